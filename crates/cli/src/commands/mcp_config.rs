//! `stagepass delegate mcp-config NAME`: the MCP client configuration for the MCP endpoints
//! (a route's `mcp = [PATHS]`) that delegation NAME reaches through the local proxy.
//!
//! The configuration names the key, it does not hold it: the agent keeps only the key's
//! SHA-256, and a `.mcp.json` is often checked in with the project. Claude Code expands
//! `${VAR}` in `headers` from its environment at start
//! (<https://docs.anthropic.com/en/docs/claude-code/mcp>), which `stagepass exec --agent`
//! fills with the delegation's key as `$STAGEPASS_PROXY_KEY`; VS Code asks once for an
//! `inputs` entry with `"password": true` and keeps the answer in its secret storage
//! (<https://code.visualstudio.com/docs/copilot/reference/mcp-configuration>).

use serde_json::{Value, json};
use stagepass_core::config::Config;
use stagepass_core::paths;
use stagepass_core::proxy_config::Route;

use crate::agent_link;
use crate::cli::{McpClient, McpConfigArgs};
use crate::error::CommandError;
use crate::output::{now_unix, print_json};

pub fn run(args: &McpConfigArgs) -> Result<(), CommandError> {
    let (list, _) = agent_link::call(stagepass_client::Client::delegate_list)?;
    let Some(info) = list.iter().find(|info| info.name == args.name) else {
        return Err(CommandError::usage(format!(
            "no delegation `{}`",
            stagepass_core::text::one_line(&args.name)
        ))
        .with_hint("`stagepass delegate list` shows them; `stagepass delegate create NAME --routes ROUTE --read-only` makes one"));
    };
    if info.expires_at <= now_unix() {
        return Err(
            CommandError::usage(format!("delegation `{}` has expired", info.name))
                .with_hint("create a new one with `stagepass delegate create`"),
        );
    }
    let config = Config::load(&paths::config_file())?;
    let servers = endpoints(&config, &info.routes, args.route.as_deref())?;
    print_json(&render(args, &servers))
}

/// `(server name, local URL)` of each MCP endpoint of the delegation's routes (or of
/// `only`); the name is the route's, with the endpoint's last segment when a route has
/// several.
fn endpoints(
    config: &Config,
    routes: &[String],
    only: Option<&str>,
) -> Result<Vec<(String, String)>, CommandError> {
    let port = config.proxy.port;
    let in_scope =
        |route: &&Route| routes.contains(&route.name) && only.is_none_or(|only| route.name == only);
    let servers: Vec<(String, String)> = config
        .routes
        .iter()
        .filter(in_scope)
        .flat_map(|route| {
            route.mcp.iter().map(move |path| {
                let name = if route.mcp.len() == 1 {
                    route.name.clone()
                } else {
                    let last = path.rsplit('/').next().unwrap_or_default();
                    format!("{}-{last}", route.name)
                };
                (name, format!("{}{path}", route.local_url(port)))
            })
        })
        .collect();
    if servers.is_empty() {
        return Err(CommandError::config(format!(
            "no MCP endpoint on the delegation's routes ({})",
            routes.join(", ")
        ))
        .with_hint(
            "add `mcp = [\"/api/mcp-actions/v1\"]` to the [[route]] of Backstage (its MCP actions plugin), then restart the agent (`stagepass agent stop`)",
        ));
    }
    Ok(servers)
}

/// Each MCP endpoint as an HTTP server entry that sends `header` as its authorization; both
/// clients' formats share this shape.
fn http_servers(servers: &[(String, String)], header: &str) -> serde_json::Map<String, Value> {
    servers
        .iter()
        .map(|(name, url)| {
            let server = json!({
                "type": "http",
                "url": url,
                "headers": { "Authorization": header },
            });
            (name.clone(), server)
        })
        .collect()
}

fn render(args: &McpConfigArgs, servers: &[(String, String)]) -> Value {
    match args.client {
        McpClient::Claude => {
            let header = format!("Bearer ${{{}}}", args.key_env);
            let entries = http_servers(servers, &header);
            json!({ "mcpServers": entries })
        }
        McpClient::Vscode => {
            let input = format!("stagepass-{}", args.name);
            let header = format!("Bearer ${{input:{input}}}");
            let entries = http_servers(servers, &header);
            json!({
                "inputs": [{
                    "type": "promptString",
                    "id": input,
                    "description": format!("Key of the stagepass delegation `{}` (printed once by `stagepass delegate create`)", args.name),
                    "password": true,
                }],
                "servers": entries,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(client: McpClient) -> McpConfigArgs {
        McpConfigArgs {
            name: "agent".into(),
            client,
            route: None,
            key_env: "STAGEPASS_PROXY_KEY".into(),
        }
    }

    #[test]
    fn claude_and_vscode_shapes_name_the_key_never_hold_it() {
        let servers = [(
            "backstage".to_string(),
            "http://127.0.0.1:7466/backstage/api/mcp-actions/v1".to_string(),
        )];
        let claude = render(&args(McpClient::Claude), &servers);
        assert_eq!(
            claude,
            json!({"mcpServers": {"backstage": {
                "type": "http",
                "url": "http://127.0.0.1:7466/backstage/api/mcp-actions/v1",
                "headers": {"Authorization": "Bearer ${STAGEPASS_PROXY_KEY}"},
            }}})
        );
        let vscode = render(&args(McpClient::Vscode), &servers);
        assert_eq!(vscode["inputs"][0]["id"], "stagepass-agent");
        assert_eq!(vscode["inputs"][0]["password"], true);
        assert_eq!(
            vscode["servers"]["backstage"]["headers"]["Authorization"],
            "Bearer ${input:stagepass-agent}"
        );
    }
}
