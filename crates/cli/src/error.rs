//! The one error every command returns: what kind of failure it is (which picks the exit code,
//! see [`crate::exit`]), the message, what to do next, and the library error underneath.
//! Library errors become one through `From`, keeping their kind, so a command never has to
//! choose an exit code by hand.

use stagepass_client::ClientError;
use stagepass_proto::{AgentError, ErrorKind, FrameError};

/// What failed, in the terms of the exit-code table (`stagepass --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unexpected,
    Usage,
    Config,
    NeedsSignIn,
    IdpRefused,
    IdpUnreachable,
    Keychain,
    Agent,
    SignInAborted,
    ChecksFailed,
    RemoteKey,
    /// A program stagepass ran for the user (ssh, gh) failed; its own message is above.
    ToolFailed,
    /// The docker helper protocol's "no credentials": the answer is already on stdout.
    NoCredential,
    /// The reader of stdout went away (`stagepass token | head -c 20`): nothing to tell.
    ReaderGone,
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug)]
pub struct CommandError {
    kind: Kind,
    message: String,
    hints: Vec<String>,
    source: Option<Source>,
}

impl CommandError {
    pub fn new(kind: Kind, message: impl Into<String>) -> CommandError {
        CommandError {
            kind,
            message: message.into(),
            hints: Vec::new(),
            source: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> CommandError {
        CommandError::new(Kind::Usage, message)
    }

    pub fn config(message: impl Into<String>) -> CommandError {
        CommandError::new(Kind::Config, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CommandError {
        self.hints.push(hint.into());
        self
    }

    pub fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> CommandError {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<ErrorKind> for Kind {
    fn from(kind: ErrorKind) -> Kind {
        match kind {
            ErrorKind::Internal => Kind::Unexpected,
            ErrorKind::BadRequest => Kind::Usage,
            ErrorKind::Config => Kind::Config,
            ErrorKind::NeedsSignIn => Kind::NeedsSignIn,
            ErrorKind::Idp => Kind::IdpRefused,
            ErrorKind::IdpUnreachable => Kind::IdpUnreachable,
            ErrorKind::Keychain => Kind::Keychain,
            ErrorKind::ProtocolMismatch => Kind::Agent,
            ErrorKind::SignInAborted => Kind::SignInAborted,
            ErrorKind::RemoteKey => Kind::RemoteKey,
        }
    }
}

/// The agent's answer: its kind and hint are the user's.
impl From<AgentError> for CommandError {
    fn from(err: AgentError) -> CommandError {
        CommandError {
            kind: err.kind.into(),
            message: err.message,
            hints: err.hint.into_iter().collect(),
            source: None,
        }
    }
}

impl From<ClientError> for CommandError {
    fn from(err: ClientError) -> CommandError {
        let hint = match &err {
            ClientError::Agent(answer) => return answer.clone().into(),
            ClientError::Start(_) => Some("run `stagepass agent` in a terminal to see why".into()),
            ClientError::Remote(_) => Some(format!(
                "check {} and the port forward (`stagepass remote ssh` on the desktop shows it)",
                stagepass_client::remote::REMOTE_ENV
            )),
            ClientError::Timeout(_) => {
                Some("the agent may be stuck: `stagepass agent stop`, then retry".to_string())
            }
            _ => None,
        };
        let error = CommandError::new(Kind::Agent, err.to_string()).with_source(err);
        match hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}

impl From<FrameError> for CommandError {
    fn from(err: FrameError) -> CommandError {
        ClientError::Frame(err).into()
    }
}

/// A core error, with the kind and hint the agent would give it (one table for both).
impl From<stagepass_core::Error> for CommandError {
    fn from(err: stagepass_core::Error) -> CommandError {
        let answer = stagepass_agent::answer_for(&err, None);
        CommandError {
            source: Some(Box::new(err)),
            ..answer.into()
        }
    }
}

impl From<std::io::Error> for CommandError {
    fn from(err: std::io::Error) -> CommandError {
        let kind = if err.kind() == std::io::ErrorKind::BrokenPipe {
            Kind::ReaderGone
        } else {
            Kind::Unexpected
        };
        CommandError::new(kind, err.to_string()).with_source(err)
    }
}

/// A preset that cannot be written is refused like a bad flag value: nothing is written.
impl From<stagepass_core::presets::PresetError> for CommandError {
    fn from(err: stagepass_core::presets::PresetError) -> CommandError {
        CommandError::usage(err.to_string()).with_source(err)
    }
}

/// What git sent is not its credential protocol.
impl From<stagepass_core::git_credential::ParseError> for CommandError {
    fn from(err: stagepass_core::git_credential::ParseError) -> CommandError {
        CommandError::usage(err.to_string()).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_is<T: std::error::Error + 'static>(err: &CommandError) -> bool {
        std::error::Error::source(err).is_some_and(|source| source.is::<T>())
    }

    #[test]
    fn the_agents_kind_and_hint_survive() {
        let err: CommandError = ClientError::Agent(AgentError {
            kind: ErrorKind::NeedsSignIn,
            message: "profile `corp` is not signed in".into(),
            hint: Some("run `stagepass login corp`".into()),
        })
        .into();
        assert_eq!(err.kind(), Kind::NeedsSignIn);
        assert_eq!(err.to_string(), "profile `corp` is not signed in");
        assert_eq!(err.hints(), ["run `stagepass login corp`"]);
    }

    #[test]
    fn a_config_error_of_core_is_a_config_error_that_says_which_file_to_fix() {
        let err: CommandError = stagepass_core::Error::Config {
            path: "/home/u/.config/stagepass/config.toml".into(),
            message: "unknown field `clientid`".into(),
        }
        .into();
        assert_eq!(err.kind(), Kind::Config);
        assert!(err.to_string().contains("config.toml"), "{err}");
        assert_eq!(
            err.hints(),
            ["fix /home/u/.config/stagepass/config.toml and retry"]
        );
        assert!(source_is::<stagepass_core::Error>(&err));
    }

    #[test]
    fn failing_to_reach_the_agent_is_an_agent_error_with_a_hint() {
        let err: CommandError = ClientError::Start("exec format error".into()).into();
        assert_eq!(err.kind(), Kind::Agent);
        assert_eq!(err.hints().len(), 1);
        assert!(source_is::<ClientError>(&err));
    }

    #[test]
    fn a_closed_stdout_is_told_apart_from_other_io_errors() {
        let gone: CommandError = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert_eq!(gone.kind(), Kind::ReaderGone);
        let other: CommandError = std::io::Error::other("disk full").into();
        assert_eq!(other.kind(), Kind::Unexpected);
    }
}
