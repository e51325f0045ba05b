//! `stagepass exec --agent NAME [SCOPE] -- CMD…`: runs CMD (an AI agent, a script) with a
//! delegation instead of the developer's token. CMD gets `$STAGEPASS_PROXY` (the first
//! delegated route's local URL), `$STAGEPASS_PROXY_KEY` (the delegation's key, which the
//! proxy checks against its scope), `$STAGEPASS_DELEGATION` (its name) and, when it may get
//! raw tokens (`--token-scopes`), `$STAGEPASS_TOKEN_URL`, where its key buys a narrowed access
//! token whenever it needs one (a token itself would expire during a long session, and sit in
//! the process's environment), and none of the developer's credentials: the token and key
//! variables this process inherited are dropped.
//! While the hold lasts, the agent serves the processes below this one nothing but `status`
//! (the agent's `delegation::held`). A process of the same user that leaves this
//! process tree, or reads the proxy key file, is not stopped: that takes an OS sandbox
//! (another user, a container), which this is not.
//!
//! The delegation dies with CMD: this process holds a connection to the agent while CMD
//! runs, and the agent revokes the delegation when that connection closes, whether this
//! process ends normally, crashes or is killed; it also revokes it itself once CMD exits,
//! so the key is refused by the time `exec` returns. Its TTL bounds it in any case.

use stagepass_core::config::Config;
use stagepass_core::paths;
use stagepass_proto::remote::TOKEN_PATH;
use stagepass_proto::{DelegationCreated, DelegationKind};

use super::{PROXY_ENV, PROXY_KEY_ENV};
use crate::agent_link;
use crate::cli::ExecArgs;
use crate::commands::delegate;
use crate::error::CommandError;

/// What carries a credential of the developer's into a process: removed from the command's
/// environment. (`STAGEPASS_CONFIG` and the directories stay: they are no secret.)
const CREDENTIAL_ENV: [&str; 7] = [
    "STAGEPASS_TOKEN",
    TOKEN_URL_ENV,
    PROXY_KEY_ENV,
    PROXY_ENV,
    stagepass_client::remote::REMOTE_ENV,
    stagepass_client::remote::REMOTE_KEY_ENV,
    stagepass_client::remote::REMOTE_KEY_FILE_ENV,
];

/// Where the delegation's key gets a narrowed token (`POST`, key as `Authorization: Bearer`).
const TOKEN_URL_ENV: &str = "STAGEPASS_TOKEN_URL";
/// The delegation's name, for the command's own logs; not a secret.
const DELEGATION_ENV: &str = "STAGEPASS_DELEGATION";
/// An agent session is an afternoon; a crashed CLI leaves nothing usable much longer.
const DEFAULT_TTL: &str = "8h";

pub fn run(name: &str, args: &ExecArgs) -> Result<(), CommandError> {
    if crate::remote_mode::remote()?.is_some() {
        return Err(CommandError::usage(
            "exec --agent makes a delegation on the desktop's agent: run it there, not in remote mode",
        ));
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(CommandError::usage(
            "name the command to run: stagepass exec --agent NAME [SCOPE] -- COMMAND [ARGS]...",
        ));
    };
    let ttl = args.ttl.as_deref().unwrap_or(DEFAULT_TTL);
    let request = delegate::request(name, DelegationKind::Exec, &args.scope, ttl)?;
    let (mut client, _) = agent_link::connect()?;
    let created = client
        .delegate_create(request)
        .map_err(CommandError::from)?;
    client
        .delegate_hold(name.to_string())
        .map_err(CommandError::from)?;
    let url = proxy_url(&created);
    let mut command = std::process::Command::new(program);
    command.args(rest);
    // None of the developer's credentials: not a token an outer `exec` put here, not the
    // unscoped proxy key, not a remote key (nor remote mode, which would use it).
    for name in CREDENTIAL_ENV {
        command.env_remove(name);
    }
    command
        .env(PROXY_ENV, url)
        .env(PROXY_KEY_ENV, created.key.expose())
        .env(DELEGATION_ENV, name);
    if created.info.tokens.is_some() {
        command.env(TOKEN_URL_ENV, format!("{}{TOKEN_PATH}", created.proxy_url));
    }
    let status = command.status();
    // The hold's connection closes here: the agent revokes. Revoke as well, and wait for
    // it, so the key is refused by the time this returns.
    drop(client);
    revoke(name);
    let status = status.map_err(|err| {
        CommandError::from(std::io::Error::new(
            err.kind(),
            format!("cannot run `{}`: {err}", program.to_string_lossy()),
        ))
    })?;
    // The command's exit code becomes this one's; a signal as a shell reports it.
    crate::replace::exit_as(status)
}

/// The first delegated route's local URL, else the proxy's own.
fn proxy_url(created: &DelegationCreated) -> String {
    let route = Config::load(&paths::config_file()).ok().and_then(|config| {
        let first = created.info.routes.first()?;
        let route = config.routes.iter().find(|route| &route.name == first)?;
        Some(route.local_url(config.proxy.port))
    });
    route.unwrap_or_else(|| created.proxy_url.clone())
}

fn revoke(name: &str) {
    match agent_link::call(|client| client.delegate_revoke(name.to_string())) {
        Ok(_) => {}
        // The agent saw the hold end first.
        Err(_) if gone(name) => {}
        Err(err) => errln!(
            "stagepass: could not revoke delegation `{name}` ({err}); it ends at its TTL, or run `stagepass delegate revoke {name}`"
        ),
    }
}

/// Whether `name` is no longer among the live delegations.
fn gone(name: &str) -> bool {
    match agent_link::call(stagepass_client::Client::delegate_list) {
        Ok((list, _)) => !list.iter().any(|info| info.name == name),
        Err(_) => false,
    }
}
