//! Reaching the agent from the CLI, starting it when none runs.

use std::path::PathBuf;

use stagepass_client::{AgentLauncher, Client};
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
        Err(stagepass_client::ClientError::NotRunning(_)) => {
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

/// Sends one request, starting an agent when none runs. When the agent dies before its first
/// answer (a crash, or one exiting just as this client connected), the request goes once more
/// to a fresh agent: the requests sent this way (token, status, claims, logout) are safe to
/// repeat.
pub fn call(
    request: &stagepass_proto::Request,
) -> Result<(stagepass_proto::Response, bool), CommandError> {
    let (mut client, started) = connect()?;
    match client.call(request) {
        Err(stagepass_client::ClientError::Gone) => {
            let (mut client, started) = connect()?;
            Ok((client.call(request)?, started))
        }
        result => Ok((result?, started)),
    }
}

/// Sends a request that may need a sign-in: when `interactive`, the sign-in's progress shows
/// on stderr (stdout stays the caller's: a token, a git answer, an ExecCredential).
pub fn ask(
    request: &stagepass_proto::Request,
    interactive: bool,
) -> Result<stagepass_proto::Response, CommandError> {
    if !interactive {
        return Ok(call(request)?.0);
    }
    let (mut client, _) = connect()?;
    crate::progress::sign_in(&mut client, request, false, true)
}

/// A token request as `token`, `exec` and `kube-credential` make it: a sign-in may start
/// when the user can take part in one.
pub fn token_request(
    profile: Option<String>,
    kind: stagepass_proto::TokenKind,
    min_valid_secs: u64,
    interactive: bool,
) -> stagepass_proto::Request {
    stagepass_proto::Request::GetToken {
        profile,
        kind,
        min_valid_secs,
        interactive,
        browser_available: interactive && crate::browser::available(),
    }
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
    let request = token_request(profile, kind, min_valid_secs, interactive);
    let response = ask(&request, interactive)?;
    crate::commands::expect_response!(response, stagepass_proto::Response::Token)
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
    let sibling = std::env::current_exe()?.with_file_name(AGENT_BINARY);
    Ok(if sibling.is_file() {
        sibling
    } else {
        PathBuf::from(AGENT_BINARY)
    })
}
