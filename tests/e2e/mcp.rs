//! Backstage's MCP actions (`@backstage/plugin-mcp-actions-backend`, tests/backstage) through
//! the local proxy, driven by a real MCP client (`@modelcontextprotocol/sdk`,
//! tests/backstage/mcp-client.mjs) configured by `stagepass delegate mcp-config`. The test
//! plugin of server.js counts on Backstage's side who called its read action and how often
//! its write action ran.

use crate::support;

use support::backstage::{Backstage, backstage_dir};
use support::proxy::{curl, free_port};
use support::{Run, Sandbox};

const TOOL_READ: &str = "stagepass-test.whoami";
const TOOL_WRITE: &str = "stagepass-test.record-write";

/// A sandbox signed in to Backstage as alice, whose route `backstage` (path /backstage) has
/// the MCP endpoint of the MCP actions plugin.
fn setup(backstage: &Backstage, port: u16) -> Sandbox {
    assert!(
        backstage_dir()
            .join("node_modules/@backstage/plugin-mcp-actions-backend")
            .is_dir(),
        "the MCP actions plugin of the test Backstage is not installed: run scripts/setup"
    );
    let profile = support::unique_profile("e2e-mcp");
    let mut sandbox = backstage.sandbox(&profile, "alice");
    sandbox.write_config(&format!(
        "[profiles.{profile}]\nkind = \"backstage\"\nurl = \"{url}\"\n\
         [proxy]\nport = {port}\n\
         [[route]]\nname = \"backstage\"\npath = \"/backstage\"\nupstream = \"{url}\"\n\
         profile = \"{profile}\"\nidentity = \"backstage\"\nmcp = [\"/api/mcp-actions/v1\"]\n",
        url = backstage.url
    ));
    sandbox.set_env("STAGEPASS_TEST_USER", "alice");
    sandbox.login_browser();
    sandbox
}

/// `delegate create NAME ARGS --json`: the key.
fn delegate(sandbox: &Sandbox, name: &str, args: &[&str]) -> String {
    let mut all = vec!["delegate", "create", name, "--routes", "backstage"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = sandbox.run(&all);
    run.assert_ok();
    run.json()["key"].as_str().unwrap().to_string()
}

/// Writes `delegate mcp-config NAME` (Claude Code's shape) into the sandbox; its path.
fn mcp_config(sandbox: &Sandbox, name: &str) -> (std::path::PathBuf, serde_json::Value) {
    let run = sandbox.run(&["delegate", "mcp-config", name]);
    run.assert_ok();
    let path = sandbox.path().join(format!("{name}.mcp.json"));
    std::fs::write(&path, run.stdout()).unwrap();
    (path, run.json())
}

/// The MCP client with `key` in `$STAGEPASS_PROXY_KEY` (as `exec --agent` sets it), never in
/// argv: one JSON line per step.
fn client(
    sandbox: &Sandbox,
    config: &std::path::Path,
    key: &str,
    steps: &[&str],
) -> Vec<serde_json::Value> {
    let mut command = sandbox.tool("node");
    command
        .arg(backstage_dir().join("mcp-client.mjs"))
        .arg(config)
        .arg("backstage")
        .args(steps)
        .current_dir(backstage_dir());
    command.env("STAGEPASS_PROXY_KEY", key);
    let run = Run(command.output().expect("node runs the MCP client"));
    run.assert_ok();
    run.stdout()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The steps without their results (a tool list is long), for failure messages.
fn brief(steps: &[serde_json::Value]) -> String {
    let lines: Vec<String> = steps
        .iter()
        .map(|step| {
            format!(
                "{} ok={} status={} {}",
                step["step"], step["ok"], step["status"], step["message"]
            )
        })
        .collect();
    lines.join("\n")
}

#[test]
fn a_read_only_delegation_lists_and_reads_through_mcp_and_its_writes_never_reach_backstage() {
    let backstage = Backstage::start(None);
    let port = free_port();
    let sandbox = setup(&backstage, port);
    let reader = delegate(&sandbox, "agent", &["--read-only", "--ttl", "1h"]);
    let (config, printed) = mcp_config(&sandbox, "agent");
    let url = format!("http://127.0.0.1:{port}/backstage/api/mcp-actions/v1");
    assert_eq!(
        printed,
        serde_json::json!({"mcpServers": {"backstage": {
            "type": "http",
            "url": url,
            "headers": {"Authorization": "Bearer ${STAGEPASS_PROXY_KEY}"},
        }}}),
        "the key is referred to, never printed"
    );
    let vscode = sandbox.run(&["delegate", "mcp-config", "agent", "--client", "vscode"]);
    vscode.assert_ok();
    assert!(!vscode.stdout().contains(&reader));
    assert_eq!(vscode.json()["servers"]["backstage"]["url"], url);
    assert_eq!(vscode.json()["inputs"][0]["password"], true);

    let steps = client(
        &sandbox,
        &config,
        &reader,
        &[
            "list",
            &format!("call:{TOOL_READ}"),
            &format!("call:{TOOL_WRITE}"),
        ],
    );
    // The actions of the catalog and of the test plugin, listed through the proxy.
    assert_eq!(steps[0]["step"], "list", "{}", brief(&steps));
    assert_eq!(steps[0]["ok"], true, "{}", brief(&steps));
    let names: Vec<&str> = steps[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    for tool in [TOOL_READ, TOOL_WRITE, "catalog.get-catalog-entity"] {
        assert!(names.contains(&tool), "{tool} in {names:?}");
    }
    // The read action ran as the developer: Backstage saw alice.
    assert_eq!(steps[1]["ok"], true, "{}", brief(&steps));
    let text = steps[1]["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("user:default/alice"), "{text}");
    assert_eq!(
        backstage.stats()["actions"]["whoami"],
        serde_json::json!(["user:default/alice"])
    );
    // The write action: a 403 of the proxy, and nothing ran on Backstage's side.
    assert_eq!(steps[2]["ok"], false, "{}", brief(&steps));
    assert_eq!(steps[2]["status"], 403, "{}", brief(&steps));
    let message = steps[2]["message"].as_str().unwrap();
    assert!(
        message.contains("outside_delegation_scope") && message.contains(TOOL_WRITE),
        "{message}"
    );
    assert_eq!(backstage.stats()["actions"]["write"], 0);

    // The same refusal seen raw: JSON naming the tool.
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"{TOOL_WRITE}","arguments":{{}}}}}}"#
    );
    let bearer = format!("Authorization: Bearer {reader}");
    let mcp_headers = [
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json, text/event-stream",
    ];
    let mut args = vec!["-X", "POST", "-H", bearer.as_str(), "--data", call.as_str()];
    args.extend_from_slice(&mcp_headers);
    let refused = curl(&url, &args);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let body = refused.json();
    assert_eq!(body["missing"], "method", "{body}");
    assert_eq!(body["tool"], TOOL_WRITE, "{body}");
    assert_eq!(backstage.stats()["actions"]["write"], 0);

    // Only the configured endpoint is read as MCP: the same read-looking message POSTed
    // anywhere else on the route is a plain POST, refused.
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let mut args = vec!["-X", "POST", "-H", bearer.as_str(), "--data", list];
    args.extend_from_slice(&mcp_headers);
    let elsewhere = format!("http://127.0.0.1:{port}/backstage/api/catalog/locations");
    let proxy_key = format!("Proxy-Authorization: Bearer {reader}");
    args[3] = proxy_key.as_str();
    let refused = curl(&elsewhere, &args);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["missing"], "method", "{}", refused.body);

    // A delegation whose paths leave out the endpoint: refused, and nothing
    // reaches Backstage's MCP endpoint, not even the tool list the per-tool check would ask.
    let catalog_only = delegate(
        &sandbox,
        "catalog-only",
        &["--read-only", "--paths", "/api/catalog/", "--ttl", "1h"],
    );
    let before = backstage.stats()["mcp"].as_u64().unwrap();
    let other_bearer = format!("Authorization: Bearer {catalog_only}");
    let read = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{TOOL_READ}","arguments":{{}}}}}}"#
    );
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        other_bearer.as_str(),
        "--data",
        read.as_str(),
    ];
    args.extend_from_slice(&mcp_headers);
    let refused = curl(&url, &args);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(backstage.stats()["mcp"].as_u64().unwrap(), before);
    // The scope's first miss: a POST (a GET would miss the path).
    assert_eq!(refused.json()["missing"], "method", "{}", refused.body);

    // The audit says which tool the agent called, allowed or refused.
    let audit = sandbox.run(&["audit", "--delegation", "agent", "--json"]);
    audit.assert_ok();
    let tools: Vec<(String, u64)> = audit
        .stdout()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|entry| entry["event"] == "proxy_request" && entry["tool"].is_string())
        .map(|entry| {
            let tool = entry["tool"].as_str().unwrap().to_string();
            (tool, entry["status"].as_u64().unwrap())
        })
        .collect();
    assert!(tools.contains(&(TOOL_READ.to_string(), 200)), "{tools:?}");
    assert!(tools.contains(&(TOOL_WRITE.to_string(), 403)), "{tools:?}");
    let human = sandbox.run(&["audit", "--delegation", "agent"]);
    assert!(
        human.stdout().contains(&format!("MCP tool {TOOL_WRITE}")),
        "{}",
        human.stdout()
    );

    // A delegation that may POST calls the write action: it does reach Backstage.
    let writer = delegate(&sandbox, "writer", &["--ttl", "1h"]);
    let (writer_config, _) = mcp_config(&sandbox, "writer");
    let steps = client(
        &sandbox,
        &writer_config,
        &writer,
        &[&format!("call:{TOOL_WRITE}")],
    );
    assert_eq!(steps[0]["ok"], true, "{}", brief(&steps));
    assert_eq!(backstage.stats()["actions"]["write"], 1);

    // For the report, not a check: what the per-tool check costs a read-only delegation's
    // call (its body read, the upstream's tools/list asked) against one that may POST.
    let median_ms = |key: &str| {
        let bearer = format!("Authorization: Bearer {key}");
        let mut args = vec!["-X", "POST", "-H", bearer.as_str(), "--data", read.as_str()];
        args.extend_from_slice(&mcp_headers);
        let mut times: Vec<f64> = (0..15)
            .map(|_| {
                let start = std::time::Instant::now();
                assert_eq!(curl(&url, &args).status, 200);
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (checked, unchecked) = (median_ms(&reader), median_ms(&writer));
    eprintln!(
        "mcp: a read tool call through the proxy, median of 15 (curl included): read-only delegation {checked:.1} ms, one that may POST {unchecked:.1} ms"
    );
}

#[test]
fn without_a_key_the_mcp_endpoint_answers_401_pointing_to_its_resource_metadata() {
    let backstage = Backstage::start(None);
    let port = free_port();
    let sandbox = setup(&backstage, port);
    delegate(&sandbox, "agent", &["--read-only", "--ttl", "1h"]);
    let (config, _) = mcp_config(&sandbox, "agent");
    let url = format!("http://127.0.0.1:{port}/backstage/api/mcp-actions/v1");
    let metadata_url = format!(
        "http://127.0.0.1:{port}/.well-known/oauth-protected-resource/backstage/api/mcp-actions/v1"
    );

    // The real client with an empty key, and with a wrong one: refused before Backstage.
    for (key, error) in [("", false), ("not-a-key", true)] {
        let steps = client(&sandbox, &config, key, &["list"]);
        assert_eq!(steps[0]["step"], "connect", "{}", brief(&steps));
        assert_eq!(steps[0]["status"], 401, "{}", brief(&steps));
        let header = if key.is_empty() {
            Vec::new()
        } else {
            vec!["-H".to_string(), format!("Authorization: Bearer {key}")]
        };
        let args: Vec<&str> = ["-X", "POST", "--data", "{}"]
            .into_iter()
            .chain(header.iter().map(String::as_str))
            .collect();
        let answer = curl(&url, &args);
        assert_eq!(answer.status, 401, "{}", answer.body);
        let challenge = answer.header("www-authenticate");
        let expected = format!("Bearer resource_metadata=\"{metadata_url}\"");
        assert_eq!(challenge.len(), 1, "{challenge:?}");
        assert!(challenge[0].starts_with(&expected), "{challenge:?}");
        assert_eq!(
            challenge[0].contains("error=\"invalid_token\""),
            error,
            "{challenge:?}"
        );
    }
    assert!(
        backstage.stats()["actions"]["whoami"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // RFC 9728: the metadata, without credentials; the resource is the endpoint's URL.
    let metadata = curl(&metadata_url, &[]);
    assert_eq!(metadata.status, 200, "{}", metadata.body);
    let document = metadata.json();
    assert_eq!(document["resource"], url, "{document}");
    assert_eq!(
        document["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    // Other paths under /.well-known still need a key.
    let other = curl(
        &format!(
            "http://127.0.0.1:{port}/.well-known/oauth-protected-resource/backstage/api/catalog"
        ),
        &[],
    );
    assert_eq!(other.status, 403, "{}", other.body);
}
