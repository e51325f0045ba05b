//! The tray's one seam to the agent. The real implementation is a thin layer over
//! `stagepass-client` (the same calls the CLI makes); tests swap in a fake so every Tauri
//! command runs without an agent.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use stagepass_client::{
    AgentLauncher, Client, ClientError, Closer, Interaction, Steps, TokenRequest, Update,
};
use stagepass_core::paths;
use stagepass_proto::{
    ClaimsReport, Flow, LoginProgress, ProfileStatus, ProxyLaunch, SignOutReport, StatusReport,
    TokenGrant, TokenKind,
};

/// An error shown to the user: what failed and, when known, what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct TrayError {
    pub message: String,
    pub hint: Option<String>,
}

impl TrayError {
    pub fn new(message: impl Into<String>) -> TrayError {
        TrayError {
            message: message.into(),
            hint: None,
        }
    }
}

impl From<ClientError> for TrayError {
    fn from(err: ClientError) -> TrayError {
        match err {
            ClientError::Agent(err) => TrayError {
                message: err.message,
                hint: err.hint,
            },
            ClientError::Start(reason) => TrayError {
                message: format!("the stagepass agent did not start: {reason}"),
                hint: Some(
                    "install stagepass-agent next to the tray app or on PATH, \
                     or run `stagepass agent` in a terminal to see why"
                        .into(),
                ),
            },
            ClientError::Unexpected => TrayError::new(
                "the agent sent an unexpected answer; is it the same version as the tray?",
            ),
            other => TrayError::new(other.to_string()),
        }
    }
}

/// Where a running sign-in registers how to cancel it.
pub type CancelSlot = Arc<Mutex<Option<Closer>>>;

pub trait Agent: Send + Sync + 'static {
    fn status(&self) -> Result<StatusReport, TrayError>;
    fn claims(&self, profile: &str) -> Result<ClaimsReport, TrayError>;
    fn sign_out(&self, profile: &str) -> Result<SignOutReport, TrayError>;
    fn access_token(&self, profile: &str) -> Result<TokenGrant, TrayError>;
    /// A one-time launch URL of the local proxy's route (it sets the browser's session cookie).
    fn proxy_launch(&self, route: &str) -> Result<ProxyLaunch, TrayError>;
    /// Runs a sign-in to its end, reporting each step. Closing what `cancel` holds aborts it.
    fn sign_in(
        &self,
        profile: &str,
        flow: Option<Flow>,
        cancel: &CancelSlot,
        on_progress: &mut dyn FnMut(&LoginProgress),
    ) -> Result<ProfileStatus, TrayError>;
    /// Streams the status snapshot and every event to `on_update` until the agent goes away.
    fn subscribe(&self, on_update: &mut dyn FnMut(Update) -> bool) -> Result<(), TrayError>;
    fn shutdown(&self) -> Result<(), TrayError>;
}

/// The real agent, started in the background when none runs.
pub struct ClientAgent {
    runtime_dir: PathBuf,
}

/// The agent sends a heartbeat every 2 s during a sign-in; this much silence means it is gone.
const SIGN_IN_STEP_TIMEOUT: Duration = Duration::from_secs(30);
const AGENT_BINARY: &str = "stagepass-agent";

impl ClientAgent {
    pub fn new() -> ClientAgent {
        ClientAgent {
            runtime_dir: paths::runtime_dir(),
        }
    }

    fn connect(&self) -> Result<Client, TrayError> {
        let launcher = AgentLauncher::new(agent_program(), &["--background"]);
        let name = format!("stagepass-tray {}", env!("CARGO_PKG_VERSION"));
        Ok(Client::connect_or_start(&self.runtime_dir, &name, &launcher)?.0)
    }

    fn call<T>(
        &self,
        call: impl Fn(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, TrayError> {
        let first = call(&mut self.connect()?);
        // An agent that died before answering (crash, or exiting just now): these calls are
        // safe to repeat against a fresh one, as the CLI does.
        match first {
            Err(ClientError::Gone) => Ok(call(&mut self.connect()?)?),
            other => Ok(other?),
        }
    }
}

impl Default for ClientAgent {
    fn default() -> Self {
        ClientAgent::new()
    }
}

impl Agent for ClientAgent {
    fn status(&self) -> Result<StatusReport, TrayError> {
        self.call(Client::status)
    }

    fn claims(&self, profile: &str) -> Result<ClaimsReport, TrayError> {
        self.call(|client| client.claims(Some(profile.into())))
    }

    fn sign_out(&self, profile: &str) -> Result<SignOutReport, TrayError> {
        self.call(|client| client.logout(Some(profile.into())))
    }

    fn access_token(&self, profile: &str) -> Result<TokenGrant, TrayError> {
        let request = TokenRequest {
            profile: Some(profile.into()),
            kind: TokenKind::Access,
            min_valid_secs: 60,
        };
        self.call(|client| client.get_token(&request, Interaction::None))
    }

    fn proxy_launch(&self, route: &str) -> Result<ProxyLaunch, TrayError> {
        self.call(|client| client.proxy_launch(Some(route.into())))
    }

    fn sign_in(
        &self,
        profile: &str,
        flow: Option<Flow>,
        cancel: &CancelSlot,
        on_progress: &mut dyn FnMut(&LoginProgress),
    ) -> Result<ProfileStatus, TrayError> {
        let mut client = self.connect()?;
        *cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.closer()?);
        let steps = Steps {
            step_timeout: SIGN_IN_STEP_TIMEOUT,
            on_step: on_progress,
        };
        // The tray runs on the user's desktop: a browser can be opened where they are.
        let result = client.login(Some(profile.into()), flow, true, steps);
        cancel.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(result?)
    }

    fn subscribe(&self, on_update: &mut dyn FnMut(Update) -> bool) -> Result<(), TrayError> {
        Ok(self.connect()?.subscribe(on_update)?)
    }

    fn shutdown(&self) -> Result<(), TrayError> {
        match Client::connect(&self.runtime_dir, "stagepass-tray") {
            Ok(mut client) => Ok(client.shutdown()?),
            Err(ClientError::NotRunning(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

/// `stagepass-agent` next to the tray binary (how the .deb and `cargo build` lay them out),
/// else from PATH.
fn agent_program() -> PathBuf {
    std::env::current_exe()
        .map(|exe| exe.with_file_name(AGENT_BINARY))
        .ok()
        .filter(|sibling| sibling.is_file())
        .unwrap_or_else(|| PathBuf::from(AGENT_BINARY))
}
