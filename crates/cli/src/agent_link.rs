//! Reaching the agent from the CLI, starting it when none runs.

use std::path::PathBuf;

use stagepass_client::{AgentLauncher, Client, ClientError, Interaction, TokenRequest};
use stagepass_core::paths;

use crate::error::CommandError;

/// How this process names itself to the agent, which audits it as the consumer: `cli`, or
/// `git` / `docker` / `kube` for the helpers.
static CONSUMER: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names this process's consumer kind for the audit log; call before the first request.
pub fn set_consumer(consumer: &'static str) {
    let _ = CONSUMER.set(consumer);
}

pub fn client_name() -> String {
    format!(
        "stagepass-{} {}",
        CONSUMER.get().copied().unwrap_or("cli"),
        env!("CARGO_PKG_VERSION")
    )
}
const AGENT_BINARY: &str = "stagepass-agent";

/// Connects to the agent, starting one in the background when none runs. Returns whether an
/// agent was started.
pub fn connect() -> Result<(Client, bool), CommandError> {
    let runtime_dir = paths::runtime_dir();
    match Client::connect(&runtime_dir, &client_name()) {
        Err(ClientError::NotRunning(_)) => {
            // Only now: finding the agent binary costs a readlink the fast path can skip.
            let launcher = AgentLauncher::new(agent_program()?, &["--background"]);
            Ok(Client::connect_or_start(
                &runtime_dir,
                &client_name(),
                &launcher,
            )?)
        }
        other => Ok(other.map(|client| (client, false))?),
    }
}

/// Makes one call, starting an agent when none runs. When the agent dies before its first
/// answer (a crash, or one exiting just as this client connected), the call goes once more
/// to a fresh agent: the calls made this way (token, status, claims, logout) are safe to
/// repeat. Returns whether an agent was started.
pub fn call<T>(
    mut call: impl FnMut(&mut Client) -> Result<T, ClientError>,
) -> Result<(T, bool), CommandError> {
    let (mut client, started) = connect_for_one_call()?;
    match call(&mut client) {
        Err(ClientError::Gone) => {
            let (mut client, started) = connect_for_one_call()?;
            Ok((call(&mut client)?, started))
        }
        result => Ok((result?, started)),
    }
}

/// [`connect`], for a connection that carries one call (see [`Client::for_one_call`]).
fn connect_for_one_call() -> Result<(Client, bool), CommandError> {
    connect().map(|(client, started)| (client.for_one_call(), started))
}

/// Makes a call that may need a sign-in: when `interactive`, the sign-in's progress shows
/// on stderr (stdout stays the caller's: a token, a git answer, an ExecCredential).
pub fn ask<T>(
    interactive: bool,
    mut call: impl FnMut(&mut Client, Interaction<'_>) -> Result<T, ClientError>,
) -> Result<T, CommandError> {
    if !interactive {
        return Ok(self::call(|client| call(client, Interaction::None))?.0);
    }
    let (mut client, _) = connect_for_one_call()?;
    let browser_available = crate::browser::available();
    crate::progress::sign_in(&mut client, false, true, |client, steps| {
        call(
            client,
            Interaction::SignIn {
                browser_available,
                steps,
            },
        )
    })
}

/// A token, from the local agent (which may sign in when `interactive`) or, in remote mode,
/// from the desktop agent's remote endpoint: what `token`, `exec` and `kube-credential` use.
pub fn token(
    profile: Option<String>,
    kind: stagepass_proto::TokenKind,
    min_valid_secs: u64,
    interactive: bool,
) -> Result<stagepass_proto::TokenGrant, CommandError> {
    if let Some(remote) = crate::remote_mode::remote()? {
        return crate::remote_mode::token(&remote, profile, kind, min_valid_secs);
    }
    let request = TokenRequest {
        profile,
        kind,
        min_valid_secs,
    };
    ask(interactive, |client, interaction| {
        client.get_token(&request, interaction)
    })
}

/// Whether a sign-in can involve the user: not when git says no prompts, and not without a
/// terminal or a display to show a browser on.
pub fn can_interact() -> bool {
    use std::io::IsTerminal;
    if std::env::var_os("GIT_TERMINAL_PROMPT").is_some_and(|value| value == "0") {
        return false;
    }
    std::io::stderr().is_terminal() || crate::browser::available()
}

/// `stagepass-agent` next to this binary (how both are installed and built), else from PATH.
pub fn agent_program() -> Result<PathBuf, CommandError> {
    let sibling = std::env::current_exe()?
        .with_file_name(format!("{AGENT_BINARY}{}", std::env::consts::EXE_SUFFIX));
    Ok(if sibling.is_file() {
        sibling
    } else {
        PathBuf::from(AGENT_BINARY)
    })
}
