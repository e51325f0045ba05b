//! Delegations: named, expiring, revocable keys with a scope (routes, HTTP methods, path
//! prefixes, profiles), for scripts, CI jobs and AI agents on this machine
//! (`stagepass delegate`, `stagepass exec --agent`) and for a `stagepass` on the far side of
//! a port forward (`stagepass remote`, [`crate::remote`]). One store ([`store`]), one check
//! ([`scope::Scope::check`], applied by the proxy), one audit path (the caller's
//! `delegation` name). A key is sent as `Proxy-Authorization: Bearer KEY`.

pub(crate) mod answer;
pub(crate) mod approval;
pub(crate) mod held;
pub(crate) mod minted;
pub(crate) mod scope;
pub(crate) mod store;

use stagepass_core::clock::unix_secs;
use stagepass_proto::{
    AgentError, DelegateRequest, DelegationCreated, DelegationKind, ErrorKind, Response,
};

use crate::errors;
use crate::sessions::Agent;
use scope::{Methods, PathRule, Scope};
pub(crate) use store::{Accepted, Delegations, NewKey, Record, Verdict};

/// A week: a key for a Codespace or a CI job that lives longer is granted again.
pub(crate) const MAX_TTL_SECS: u64 = 7 * 86_400;
/// A day for `exec --agent`: the key dies with its process, and its TTL only bounds what a
/// crashed CLI leaves behind.
pub(crate) const MAX_EXEC_TTL_SECS: u64 = 86_400;

pub(crate) fn now(agent: &Agent) -> u64 {
    unix_secs(agent.now())
}

fn bad(message: String) -> AgentError {
    errors::reply(ErrorKind::BadRequest, message, None)
}

/// Names are shown in lists, the audit and the 403s: plain and short.
pub(crate) fn check_name(name: &str, noun: &str) -> Result<(), AgentError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(bad(format!(
            "{noun} name `{}`: use 1 to 64 letters, digits, `.`, `_` or `-`",
            stagepass_core::text::one_line(name)
        )))
    }
}

pub(crate) fn check_ttl(ttl_secs: u64, max: u64, noun: &str) -> Result<(), AgentError> {
    if ttl_secs == 0 || ttl_secs > max {
        let days = max / 86_400;
        let plural = if days == 1 { "" } else { "s" };
        return Err(bad(format!(
            "{noun} lives between 1 second and {days} day{plural}, not {ttl_secs} s"
        )));
    }
    Ok(())
}

/// The proxy's URL: a key is useless until the listener serves, so say so now.
pub(crate) fn proxy_url(agent: &Agent, what: &str) -> Result<String, AgentError> {
    crate::proxy::serving_url(agent).map_err(|why| {
        errors::reply(
            ErrorKind::Config,
            format!("{what} is the local proxy's listener, which is not serving: {why}"),
            Some("add a [[route]] to the config, or check `stagepass status`, then restart the agent (`stagepass agent stop`)".into()),
        )
    })
}

/// `Request::DelegateCreate`: parses the scope into types, resolves it against the config,
/// and mints the key.
pub(crate) async fn create(
    agent: &Agent,
    request: DelegateRequest,
) -> Result<Response, AgentError> {
    let (max, noun) = match request.kind {
        DelegationKind::Exec => (MAX_EXEC_TTL_SECS, "an `exec --agent` delegation"),
        DelegationKind::Delegate => (MAX_TTL_SECS, "a delegation"),
        DelegationKind::Remote => {
            return Err(bad(
                "remote keys are granted with `stagepass remote grant`".into()
            ));
        }
    };
    check_ttl(request.ttl_secs, max, noun)?;
    check_name(&request.name, "delegation")?;
    let mut scope = scope_of(agent, &request)?;
    scope.tokens = tokens_of(agent, &request, &scope).await?.map(Box::new);
    let proxy_url = proxy_url(agent, "a delegation's only door")?;
    let (key, record) = agent
        .delegations
        .grant(
            NewKey {
                name: request.name,
                kind: request.kind,
                scope,
                remote_port: None,
                ttl_secs: request.ttl_secs,
            },
            now(agent),
        )
        .await
        .map_err(bad)?;
    // A token minted for an earlier delegation of the same name is not this one's.
    agent.delegations.minted.forget(record.name());
    Ok(Response::DelegationCreated(DelegationCreated {
        key,
        info: record.info(),
        proxy_url,
    }))
}

/// Routes (and those of `--profiles`), narrowed to the methods and paths asked for. A
/// delegation needs at least one route: it reaches nothing else.
fn scope_of(agent: &Agent, request: &DelegateRequest) -> Result<Scope, AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let mut routes = request.routes.clone();
    for profile in &request.profiles {
        if !config.profiles.contains_key(profile) {
            return Err(bad(format!(
                "no profile `{}`",
                stagepass_core::text::one_line(profile)
            )));
        }
        routes.extend(
            config
                .routes
                .iter()
                .filter(|route| &route.profile == profile)
                .map(|route| route.name.clone()),
        );
    }
    if routes.is_empty() {
        return Err(bad(
            "name the routes the delegation may use: --routes R1,R2 (or --profiles P for the routes of P)".into(),
        ));
    }
    let scope = Scope::resolve(&config, &routes, &[]).map_err(bad)?;
    let methods = request
        .methods
        .as_deref()
        .map(Methods::parse)
        .transpose()
        .map_err(bad)?;
    let paths = request
        .paths
        .iter()
        .map(|text| PathRule::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    // Their profiles are those of their routes: raw tokens, when asked for, are of those.
    let mut scope = scope.limited(methods, paths).map_err(bad)?;
    scope.ask = answer::check_ask(request.ask_timeout_secs)?;
    Ok(scope)
}

/// The raw tokens the delegation may get (`--token-scopes`, `--token-audience`), for the
/// one profile of its scope, and how they are narrowed; `None` when none were asked for.
async fn tokens_of(
    agent: &Agent,
    request: &DelegateRequest,
    scope: &Scope,
) -> Result<Option<stagepass_proto::DelegatedTokens>, AgentError> {
    if request.token_scopes.is_empty() && request.token_audience.is_none() {
        return Ok(None);
    }
    let [profile] = scope.profiles.as_slice() else {
        return Err(bad(format!(
            "raw tokens are for one profile; this delegation's routes use {}: narrow --routes or --profiles",
            scope.profiles.join(", ")
        )));
    };
    let (name, settings) = crate::session::resolve_profile(agent, Some(profile))?;
    minted::decide(
        agent,
        &name,
        &settings,
        &request.token_scopes,
        request.token_audience.as_deref(),
    )
    .await
    .map(Some)
}

/// `Request::DelegateList`.
pub(crate) fn list(agent: &Agent) -> Response {
    Response::Delegations(
        agent
            .delegations
            .list(None)
            .iter()
            .map(Record::info)
            .collect(),
    )
}

/// `Request::DelegateRevoke`.
pub(crate) async fn revoke_request(agent: &Agent, name: &str) -> Result<Response, AgentError> {
    let record = revoke(agent, name, None).await?;
    Ok(Response::Delegations(vec![record.info()]))
}

/// `Request::DelegateHold`: waits while the connection stays open (the client sends nothing
/// more), then revokes the `exec` delegation `name`. Also ends when the delegation expired
/// or was revoked in the meantime.
pub(crate) async fn hold(
    agent: &Agent,
    conn: &mut crate::conn::Connection,
    name: &str,
    pid: Option<i32>,
) -> Result<Response, AgentError> {
    let held = |record: &Record| record.name() == name;
    if !agent
        .delegations
        .list(Some(DelegationKind::Exec))
        .iter()
        .any(held)
    {
        return Err(bad(format!(
            "no live `exec` delegation `{}` to hold",
            stagepass_core::text::one_line(name)
        )));
    }
    // What the holding CLI starts gets nothing from this socket while it holds.
    let _holding = pid.map(|pid| agent.delegations.held.hold(pid, name));
    // Quiet is the normal state: at each read timeout, look whether it still lives, and wait
    // on. Anything else (closed, broken, a request where none may come): the holder is gone.
    while let Err(crate::conn::ConnError::Timeout) = conn.read::<stagepass_proto::Request>().await {
        let live = agent
            .delegations
            .list(Some(DelegationKind::Exec))
            .iter()
            .any(|record| held(record) && record.info().expires_at > now(agent));
        if !live {
            break;
        }
    }
    // Already gone when the CLI's own revoke came first, or `delegate revoke` did: nothing to
    // record twice.
    let revoked = agent
        .delegations
        .revoke(name, Some(DelegationKind::Exec), now(agent))
        .await
        .map_err(|message| errors::reply(ErrorKind::Internal, message, None))?;
    minted::revoked(agent, name).await;
    Ok(Response::Delegations(
        revoked.iter().map(Record::info).collect(),
    ))
}

/// Refuses every request but `status` from a process below a CLI that holds an `exec`
/// delegation ([`held`]): it reaches the proxy with its key, and nothing else.
pub(crate) fn refuse_held(
    agent: &Agent,
    request: &stagepass_proto::Request,
    pid: Option<i32>,
) -> Option<AgentError> {
    if matches!(request, stagepass_proto::Request::Status) {
        return None;
    }
    let name = agent.delegations.held.under(pid?)?;
    Some(errors::reply(
        ErrorKind::RemoteKey,
        format!(
            "this process runs under `stagepass exec --agent {name}`: it reaches the proxy with $STAGEPASS_PROXY_KEY, and the agent serves it nothing else"
        ),
        None,
    ))
}

/// Revokes `name` (of `kind`, or any kind) at once; the one way out for every kind.
pub(crate) async fn revoke(
    agent: &Agent,
    name: &str,
    kind: Option<DelegationKind>,
) -> Result<Record, AgentError> {
    match agent.delegations.revoke(name, kind, now(agent)).await {
        Ok(Some(record)) => {
            minted::revoked(agent, name).await;
            Ok(record)
        }
        Ok(None) => {
            let names: Vec<String> = agent
                .delegations
                .list(kind)
                .iter()
                .map(|record| record.name().to_string())
                .collect();
            let (noun, plural, list) = match kind {
                Some(DelegationKind::Remote) => ("remote key", "keys", "remote list"),
                _ => ("delegation", "delegations", "delegate list"),
            };
            Err(errors::reply(
                ErrorKind::BadRequest,
                format!(
                    "no {noun} `{}`; {plural}: {}",
                    stagepass_core::text::one_line(name),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
                Some(format!("`stagepass {list}` shows them")),
            ))
        }
        Err(message) => Err(errors::reply(ErrorKind::Internal, message, None)),
    }
}
