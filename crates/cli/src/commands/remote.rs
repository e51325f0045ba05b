//! `stagepass remote grant|list|revoke|ssh`: remote keys for a Codespace or an SSH host, and
//! the reverse port forward that lets the remote side reach the agent's proxy listener.

use std::io::Write;

use stagepass_client::Client;
use stagepass_client::remote::{REMOTE_ENV, REMOTE_KEY_ENV};
use stagepass_core::config::Config;
use stagepass_core::paths;
use stagepass_proto::{RemoteGrantRequest, RemoteGranted, RemoteKeyInfo};

use crate::agent_link;
use crate::cli::{RemoteAction, RemoteScopeArgs, RemoteSshArgs};
use crate::error::{CommandError, Kind};
use crate::output::{parse_span, print_json, rfc3339, when};

pub fn run(action: RemoteAction) -> Result<(), CommandError> {
    match action {
        RemoteAction::Grant(args) => {
            let granted = grant(&args.scope)?;
            if args.json {
                print_json(&serde_json::json!({
                    "name": granted.info.name,
                    "key": granted.key.expose(),
                    "routes": granted.info.routes,
                    "profiles": granted.info.profiles,
                    "expires_at": rfc3339(granted.info.expires_at),
                    "proxy_url": granted.proxy_url,
                }))?;
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "Remote key `{}` (shown once; the agent keeps only its SHA-256):\n{}\n",
                granted.info.name,
                granted.key.expose()
            )?;
            writeln!(out, "{}", describe(&granted.info))?;
            writeln!(
                out,
                "\nOn the remote side, after a forward of the proxy's port:"
            )?;
            write_env(&mut out, &remote_url(&granted)?, Some(granted.key.expose()))?;
            Ok(())
        }
        RemoteAction::List(json) => {
            let (keys, _) = agent_link::call(Client::remote_list)?;
            if json.json {
                let keys: Vec<serde_json::Value> = keys.iter().map(info_json).collect();
                print_json(&serde_json::Value::Array(keys))?;
            } else if keys.is_empty() {
                outln!("no remote keys (`stagepass remote grant` mints one)");
            } else {
                for key in &keys {
                    outln!("{}\n", describe(key));
                }
            }
            Ok(())
        }
        RemoteAction::Revoke { name } => {
            let (revoked, _) = agent_link::call(|client| client.remote_revoke(name.clone()))?;
            for key in revoked {
                outln!("revoked remote key `{}`: it stops working now", key.name);
            }
            Ok(())
        }
        RemoteAction::Ssh(args) => ssh(args),
    }
}

fn grant(scope: &RemoteScopeArgs) -> Result<RemoteGranted, CommandError> {
    let ttl_secs = parse_span(&scope.ttl).ok_or_else(|| {
        CommandError::usage(format!(
            "--ttl {}: use a span like 30m, 8h or 2d",
            scope.ttl
        ))
    })?;
    let request = RemoteGrantRequest {
        name: scope.name.clone(),
        ttl_secs,
        routes: scope.routes.clone(),
        profiles: scope.profiles.clone(),
        remote_port: scope.remote_port,
    };
    let (granted, _) = agent_link::call(|client| client.remote_grant(request.clone()))?;
    Ok(granted)
}

/// The URL the remote side uses: the proxy's port, or the forward's own.
fn remote_url(granted: &RemoteGranted) -> Result<String, CommandError> {
    let port = match granted.info.remote_port {
        Some(port) => port,
        None => proxy_port(Some(&granted.proxy_url))?,
    };
    Ok(format!("http://127.0.0.1:{port}"))
}

/// The listener's port: from the agent's answer, else the config.
fn proxy_port(proxy_url: Option<&str>) -> Result<u16, CommandError> {
    if let Some(port) = proxy_url
        .and_then(|url| url.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
    {
        return Ok(port);
    }
    let config = Config::load(&paths::config_file())?;
    Ok(config.proxy.port)
}

fn ssh(args: RemoteSshArgs) -> Result<(), CommandError> {
    let granted = if args.grant {
        Some(grant(&args.scope)?)
    } else {
        None
    };
    let port = proxy_port(granted.as_ref().map(|granted| granted.proxy_url.as_str()))?;
    let remote_port = args.scope.remote_port.unwrap_or(port);
    let forward = format!("127.0.0.1:{remote_port}:127.0.0.1:{port}");
    // The key is never an argument: only the forward's ports and the destination are.
    let ssh_options = [
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        forward.as_str(),
    ];
    let (program, command_args): (&str, Vec<&str>) = match (&args.codespace, &args.host) {
        (Some(codespace), _) => (
            "gh",
            ["codespace", "ssh", "-c", codespace.as_str(), "--"]
                .into_iter()
                .chain(ssh_options)
                .collect(),
        ),
        (None, Some(host)) => (
            "ssh",
            ssh_options.into_iter().chain([host.as_str()]).collect(),
        ),
        (None, None) => {
            return Err(CommandError::usage(
                "name the machine to reach: a HOST or --codespace NAME",
            ));
        }
    };
    let target = args
        .codespace
        .as_deref()
        .or(args.host.as_deref())
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if let Some(granted) = &granted {
        writeln!(out, "# {}", describe(&granted.info).replace('\n', "\n# "))?;
    }
    writeln!(out, "# On {target}, in the shell that runs stagepass:")?;
    let url = format!("http://127.0.0.1:{remote_port}");
    write_env(
        &mut out,
        &url,
        granted.as_ref().map(|granted| granted.key.expose()),
    )?;
    let shown = format!("{program} {}", command_args.join(" "));
    if !args.run {
        writeln!(
            out,
            "# Here, keep this running while the remote side needs the agent:"
        )?;
        writeln!(out, "{shown}")?;
        return Ok(());
    }
    writeln!(out, "# Running: {shown} (Ctrl-C ends the forward)")?;
    out.flush()?;
    drop(out);
    let status = std::process::Command::new(program)
        .args(&command_args)
        .status()
        .map_err(|err| {
            CommandError::new(Kind::ToolFailed, format!("cannot run `{program}`: {err}"))
                .with_hint(tool_hint(program, target))
                .with_source(err)
        })?;
    if status.success() {
        Ok(())
    } else {
        // ssh has said why on stderr already; the agent is not involved.
        Err(CommandError::new(
            Kind::ToolFailed,
            format!("{program} failed: `{shown}` ended with {status}"),
        )
        .with_hint(tool_hint(program, target)))
    }
}

/// What to check when the forward's program fails: it works on its own first.
fn tool_hint(program: &str, target: &str) -> String {
    if program == "gh" {
        format!(
            "check that `gh codespace ssh -c {target}` works on its own (gh installed, `gh auth login`, the codespace running)"
        )
    } else {
        format!(
            "check that `ssh {target}` works on its own (host name, keys, network); `ExitOnForwardFailure` also ends it when the remote port is taken"
        )
    }
}

fn write_env(out: &mut impl Write, url: &str, key: Option<&str>) -> std::io::Result<()> {
    writeln!(out, "export {REMOTE_ENV}={url}")?;
    match key {
        Some(key) => writeln!(out, "export {REMOTE_KEY_ENV}={key}"),
        None => writeln!(
            out,
            "export {REMOTE_KEY_ENV}=...   # a key from `stagepass remote grant` (or --grant here)"
        ),
    }
}

fn describe(key: &RemoteKeyInfo) -> String {
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    format!(
        "{}\n  routes:   {}\n  profiles: {}\n  expires:  {}\n  last use: {}",
        key.name,
        list(&key.routes),
        list(&key.profiles),
        when(key.expires_at),
        key.last_used_at.map_or_else(|| "never".to_string(), when),
    )
}

fn info_json(key: &RemoteKeyInfo) -> serde_json::Value {
    serde_json::json!({
        "name": key.name,
        "routes": key.routes,
        "profiles": key.profiles,
        "remote_port": key.remote_port,
        "created_at": rfc3339(key.created_at),
        "expires_at": rfc3339(key.expires_at),
        "expired": key.expires_at <= crate::output::now_unix(),
        "last_used_at": key.last_used_at.map(rfc3339),
    })
}
