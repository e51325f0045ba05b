//! `stagepass delegate create|list|revoke` (and `mcp-config`, in [`super::mcp_config`]): scoped, expiring, revocable keys for scripts, CI
//! jobs and AI agents on this machine. The key is printed once, to stdout, and never put in
//! anyone's argv; the agent keeps only its SHA-256.

use std::io::Write;

use stagepass_client::Client;
use stagepass_proto::approval::Decision;
use stagepass_proto::remote::TOKEN_PATH;
use stagepass_proto::{
    DelegateRequest, DelegatedTokens, DelegationCreated, DelegationInfo, DelegationKind,
    READ_ONLY_METHODS, TokenMethod,
};

use crate::agent_link;
use crate::cli::{DelegateAction, DelegateScopeArgs};
use crate::commands::delegate_approval;
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
        DelegateAction::Pending(json) => delegate_approval::pending(json.json),
        DelegateAction::Approve { id, always } => {
            let decision = if always {
                Decision::AllowAlways
            } else {
                Decision::AllowOnce
            };
            delegate_approval::answer(&id, decision)
        }
        DelegateAction::Deny { id } => delegate_approval::answer(&id, Decision::Deny),
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
        ask_timeout_secs: delegate_approval::ask_timeout(&scope.ask)?,
        token_scopes: scope.token_scopes.clone(),
        token_audience: scope.token_audience.clone(),
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
        "\nRaw tokens: {}.\nSend the key to the proxy at {} as\n  Proxy-Authorization: Bearer KEY",
        raw_tokens(created.info.tokens.as_ref()),
        created.proxy_url
    )?;
    if created
        .info
        .tokens
        .as_ref()
        .is_some_and(|tokens| tokens.method != TokenMethod::ProxyOnly)
    {
        writeln!(
            out,
            "and get a narrowed access token with the key as `Authorization: Bearer KEY` in\n  POST {}{TOKEN_PATH} (JSON body {{}})",
            created.proxy_url
        )?;
    }
    Ok(())
}

/// Which way the delegation gets raw tokens, in a sentence.
fn raw_tokens(tokens: Option<&DelegatedTokens>) -> String {
    let Some(tokens) = tokens else {
        return "none (proxy access only; --token-scopes allows narrowed tokens)".into();
    };
    let narrowed = match &tokens.audience {
        Some(audience) => format!("scopes {}, audience {audience}", tokens.scopes.join(" ")),
        None => format!("scopes {}", tokens.scopes.join(" ")),
    };
    match tokens.method {
        TokenMethod::Exchange => format!(
            "{narrowed} of profile `{}`, by token exchange (RFC 8693)",
            tokens.profile
        ),
        TokenMethod::FewerScopes => format!(
            "{narrowed} of profile `{}`, by a refresh asking for fewer scopes (RFC 6749 §6); {}",
            tokens.profile, tokens.why
        ),
        TokenMethod::ProxyOnly => format!("none, proxy access only: {}", tokens.why),
    }
}

fn method_name(tokens: Option<&DelegatedTokens>) -> &'static str {
    match tokens.map(|tokens| tokens.method) {
        Some(TokenMethod::Exchange) => "exchange",
        Some(TokenMethod::FewerScopes) => "fewer_scopes",
        Some(TokenMethod::ProxyOnly) | None => "proxy_only",
    }
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
    let mut text = format!(
        "{} ({})\n  routes:   {}\n  methods:  {}\n  paths:    {}\n  tokens:   {}\n  expires:  {}\n  last use: {}",
        info.name,
        kind_name(info.kind),
        list(&info.routes, "none"),
        info.methods
            .as_deref()
            .map_or_else(|| "all".to_string(), |methods| list(methods, "none")),
        list(&info.paths, "all"),
        method_name(info.tokens.as_ref()).replace('_', " "),
        when(info.expires_at),
        info.last_used_at.map_or_else(|| "never".to_string(), when),
    );
    if let Some(secs) = info.ask_timeout_secs {
        text.push_str(&format!(
            "\n  ask:      requests outside the scope wait {secs} s for your answer"
        ));
    }
    if !info.approved.is_empty() {
        text.push_str(&format!("\n  approved: {}", info.approved.join(", ")));
    }
    text
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
        "ask_timeout_secs": info.ask_timeout_secs,
        "approved": info.approved,
        "token_method": method_name(info.tokens.as_ref()),
        "tokens": info.tokens,
    })
}
