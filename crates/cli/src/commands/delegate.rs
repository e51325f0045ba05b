//! `stagepass delegate create|list|revoke` (and `mcp-config`, in [`super::mcp_config`]): scoped, expiring, revocable keys for scripts, CI
//! jobs and AI agents on this machine. The key is printed once, to stdout, and never put in
//! anyone's argv; the agent keeps only its SHA-256.

use std::io::Write;

use stagepass_client::Client;
use stagepass_proto::{
    DelegateRequest, DelegationCreated, DelegationInfo, DelegationKind, READ_ONLY_METHODS,
};

use crate::agent_link;
use crate::cli::{DelegateAction, DelegateScopeArgs};
use crate::error::CommandError;
use crate::output::{parse_span, print_json, rfc3339, when};

pub fn run(action: DelegateAction) -> Result<(), CommandError> {
    match action {
        DelegateAction::Create(args) => {
            let request = request(&args.name, DelegationKind::Delegate, &args.scope, &args.ttl)?;
            let (created, _) = agent_link::call(|client| client.delegate_create(request.clone()))?;
            if args.json {
                let mut json = info_json(&created.info);
                json["key"] = created.key.expose().into();
                json["proxy_url"] = created.proxy_url.clone().into();
                return print_json(&json);
            }
            print_created(&created)
        }
        DelegateAction::List(json) => {
            let (list, _) = agent_link::call(Client::delegate_list)?;
            if json.json {
                print_json(&serde_json::Value::Array(
                    list.iter().map(info_json).collect(),
                ))?;
            } else if list.is_empty() {
                outln!("no delegations (`stagepass delegate create` makes one)");
            } else {
                for info in &list {
                    outln!("{}\n", describe(info));
                }
            }
            Ok(())
        }
        DelegateAction::McpConfig(args) => super::mcp_config::run(&args),
        DelegateAction::Revoke { name } => {
            let (revoked, _) = agent_link::call(|client| client.delegate_revoke(name.clone()))?;
            for info in revoked {
                outln!("revoked delegation `{}`: it stops working now", info.name);
            }
            Ok(())
        }
    }
}

/// The request for a delegation of `kind`; the agent parses and checks the scope.
pub fn request(
    name: &str,
    kind: DelegationKind,
    scope: &DelegateScopeArgs,
    ttl: &str,
) -> Result<DelegateRequest, CommandError> {
    let ttl_secs = parse_span(ttl).ok_or_else(|| {
        CommandError::usage(format!("--ttl {ttl}: use a span like 30m, 8h or 2d"))
    })?;
    let methods = if scope.read_only {
        Some(
            READ_ONLY_METHODS
                .iter()
                .map(|name| name.to_string())
                .collect(),
        )
    } else if scope.methods.is_empty() {
        None
    } else {
        Some(scope.methods.clone())
    };
    Ok(DelegateRequest {
        name: name.to_string(),
        kind,
        ttl_secs,
        routes: scope.routes.clone(),
        profiles: scope.profiles.clone(),
        methods,
        paths: scope.paths.clone(),
    })
}

fn print_created(created: &DelegationCreated) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Delegation `{}` (key shown once; the agent keeps only its SHA-256):\n{}\n",
        created.info.name,
        created.key.expose()
    )?;
    writeln!(out, "{}", describe(&created.info))?;
    writeln!(
        out,
        "\nRaw tokens: none (proxy access only). Send the key to the proxy at {} as\n  Proxy-Authorization: Bearer KEY",
        created.proxy_url
    )?;
    Ok(())
}

fn list(names: &[String], empty: &str) -> String {
    if names.is_empty() {
        empty.to_string()
    } else {
        names.join(", ")
    }
}

fn kind_name(kind: DelegationKind) -> &'static str {
    match kind {
        DelegationKind::Remote => "remote",
        DelegationKind::Delegate => "delegate",
        DelegationKind::Exec => "exec",
    }
}

fn describe(info: &DelegationInfo) -> String {
    format!(
        "{} ({})\n  routes:   {}\n  methods:  {}\n  paths:    {}\n  expires:  {}\n  last use: {}",
        info.name,
        kind_name(info.kind),
        list(&info.routes, "none"),
        info.methods
            .as_deref()
            .map_or_else(|| "all".to_string(), |methods| list(methods, "none")),
        list(&info.paths, "all"),
        when(info.expires_at),
        info.last_used_at.map_or_else(|| "never".to_string(), when),
    )
}

fn info_json(info: &DelegationInfo) -> serde_json::Value {
    serde_json::json!({
        "name": info.name,
        "kind": info.kind,
        "routes": info.routes,
        "profiles": info.profiles,
        "methods": info.methods,
        "paths": info.paths,
        "created_at": rfc3339(info.created_at),
        "expires_at": rfc3339(info.expires_at),
        "expired": info.expires_at <= crate::output::now_unix(),
        "last_used_at": info.last_used_at.map(rfc3339),
    })
}
