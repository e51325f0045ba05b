//! `stagepass exec [PROFILE] -- CMD…`: runs CMD with a token in its environment, never in argv
//! (argv is readable by every local user through /proc).

use stagepass_core::config::Config;
use stagepass_core::paths;
use stagepass_proto::{Secret, TokenKind};

use crate::agent_link;
use crate::cli::ExecArgs;
use crate::error::CommandError;
use crate::remote_mode;

mod agent;

pub fn run(args: ExecArgs) -> Result<(), CommandError> {
    if let Some(name) = &args.agent {
        return agent::run(name, &args);
    }
    let scoped = args.ttl.is_some()
        || !args.scope.routes.is_empty()
        || !args.scope.profiles.is_empty()
        || !args.scope.methods.is_empty()
        || args.scope.read_only
        || !args.scope.paths.is_empty();
    if scoped {
        return Err(CommandError::usage(
            "--routes, --profiles, --methods, --read-only, --paths and --ttl scope a delegation: add --agent NAME",
        ));
    }
    if args.env_var.is_empty() || args.env_var.contains(['=', '\0']) {
        return Err(CommandError::usage(format!(
            "--env-var `{}` is not a valid environment variable name",
            args.env_var
        )));
    }
    let interactive = agent_link::can_interact();
    let kind = if args.id_token {
        TokenKind::Id
    } else {
        TokenKind::Access
    };
    let remote = remote_mode::remote()?;
    let grant = agent_link::token(args.profile.profile, kind, args.min_valid, interactive)?;
    let Some((program, rest)) = args.command.split_first() else {
        return Err(CommandError::usage(
            "name the command to run: stagepass exec [OPTIONS] -- COMMAND [ARGS]...",
        ));
    };
    let mut command = std::process::Command::new(program);
    command.args(rest).env(&args.env_var, grant.token.expose());
    let proxy = match &remote {
        // The forwarded port is the proxy too, and the remote key its key for the routes
        // in the key's scope (routes by their path or NAME.localhost under this URL).
        Some(remote) => Some((remote.url.clone(), remote.key.to_secret())),
        None => proxy_access(args.route.as_deref())?,
    };
    if let Some((url, key)) = proxy {
        command.env(PROXY_ENV, url).env(PROXY_KEY_ENV, key.expose());
    }
    // The command's exit code (and on Unix its signals) are stagepass's own.
    let err = crate::replace::run_in_place(command);
    Err(CommandError::from(std::io::Error::new(
        err.kind(),
        format!("cannot run `{}`: {err}", program.to_string_lossy()),
    )))
}

/// The local proxy's URL (a route's) and key, for programs that call it.
pub(crate) const PROXY_ENV: &str = "STAGEPASS_PROXY";
pub(crate) const PROXY_KEY_ENV: &str = "STAGEPASS_PROXY_KEY";

/// The route's local URL and the proxy key, when the config has routes. The agent (started by
/// the token request above) has written the key by now when its proxy serves.
fn proxy_access(route: Option<&str>) -> Result<Option<(String, Secret<String>)>, CommandError> {
    let Ok(config) = Config::load(&paths::config_file()) else {
        return Ok(None);
    };
    let chosen = match route {
        Some(name) => Some(
            config
                .routes
                .iter()
                .find(|candidate| candidate.name == name)
                .ok_or_else(|| CommandError::usage(format!("--route {name}: no such [[route]]")))?,
        ),
        None => config.routes.first(),
    };
    let Some(chosen) = chosen else {
        return Ok(None);
    };
    let key_path = paths::proxy_key_path(&paths::runtime_dir());
    match std::fs::read_to_string(&key_path) {
        Ok(key) => Ok(Some((
            chosen.local_url(config.proxy.port),
            Secret::new(key.trim().to_string()),
        ))),
        Err(err) => {
            errln!(
                "stagepass: the local proxy is not serving ({}: {err}); see `stagepass status`",
                key_path.display()
            );
            Ok(None)
        }
    }
}
