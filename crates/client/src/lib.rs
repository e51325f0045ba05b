//! A small blocking client of the stagepass agent. Blocking on purpose: `stagepass token` and
//! the credential helpers are short-lived processes where a runtime would cost more than the
//! whole exchange.

mod actions;
pub mod browser;
mod launch;
pub mod remote;
mod transport;

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stagepass_core::paths;
use stagepass_proto::{
    AgentError, FrameError, Hello, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, PROTOCOL_VERSION, Request,
    Response, Welcome, decode, encode_into, frame_len,
};

pub use actions::{Interaction, Rejection, Steps, TokenRequest, Update};
pub use launch::AgentLauncher;

/// Covers the slowest answer the agent gives without user interaction: discovery plus a
/// refresh against a slow IdP, each bounded by the agent's own HTTP timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no agent runs for {0}")]
    NotRunning(PathBuf),
    #[error("the agent did not start: {0}")]
    Start(String),
    #[error("cannot talk to the agent: {0}")]
    Io(#[from] std::io::Error),
    /// The agent closed the connection before its first answer: it died or is exiting.
    #[error("the agent went away before answering")]
    Gone,
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the agent sent a malformed message: {0}")]
    Frame(#[from] FrameError),
    #[error("the agent sent an unexpected answer")]
    Unexpected,
    /// Remote mode: the endpoint could not be reached or configured, or answered garbage.
    #[error("{0}")]
    Remote(String),
    /// The agent answered with an error: what the user asked for failed.
    #[error("{}", .0.message)]
    Agent(AgentError),
}

/// See [`Client::closer`].
#[derive(Debug)]
pub struct Closer(transport::Stream);

impl Closer {
    pub fn close(&self) {
        self.0.shutdown();
    }
}

pub struct Client {
    stream: BufReader<transport::Stream>,
    /// The hello, sent with the first request so the exchange is one write each way.
    hello: Option<Hello>,
    welcome: Option<Welcome>,
}

impl Client {
    /// Connects to the agent of `runtime_dir`, which must be a private directory of ours.
    pub fn connect(runtime_dir: &Path, client_name: &str) -> Result<Client, ClientError> {
        match std::fs::symlink_metadata(runtime_dir) {
            Ok(meta) => paths::check_private_dir(runtime_dir, &meta)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClientError::NotRunning(runtime_dir.to_path_buf()));
            }
            Err(err) => return Err(err.into()),
        }
        let stream = match transport::connect(runtime_dir) {
            Ok(stream) => stream,
            Err(err) if transport::no_agent(&err) => {
                return Err(ClientError::NotRunning(runtime_dir.to_path_buf()));
            }
            Err(err) => return Err(err.into()),
        };
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        // Pipelined: the hello goes out with the first request, the welcome comes back with
        // the first answer.
        Ok(Client {
            stream: BufReader::new(stream),
            hello: Some(Hello {
                protocol: PROTOCOL_VERSION,
                client: client_name.to_string(),
                single_request: false,
            }),
            welcome: None,
        })
    }

    /// Says in the hello that this connection carries one call: the agent closes it after
    /// the answer rather than wait for this process to hang up. A second call on it then
    /// fails ([`ClientError::Gone`] or an I/O error). For a process that makes one call and
    /// exits; must come before the call.
    #[must_use]
    pub fn for_one_call(mut self) -> Client {
        if let Some(hello) = &mut self.hello {
            hello.single_request = true;
        }
        self
    }

    /// Connects, starting an agent first when none runs. Returns whether one was started.
    pub fn connect_or_start(
        runtime_dir: &Path,
        client_name: &str,
        launcher: &AgentLauncher,
    ) -> Result<(Client, bool), ClientError> {
        match Client::connect(runtime_dir, client_name) {
            Err(ClientError::NotRunning(_)) => {
                launcher.start(runtime_dir)?;
                Ok((Client::connect(runtime_dir, client_name)?, true))
            }
            other => other.map(|client| (client, false)),
        }
    }

    /// A handle that closes this connection from another thread: a blocked read returns at
    /// once, and the agent sees the close, which cancels a sign-in under way.
    pub fn closer(&self) -> Result<Closer, ClientError> {
        Ok(Closer(self.stream.get_ref().try_clone()?))
    }

    /// The agent's welcome, once an answer has been read.
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// Sends one request and waits for its final answer. With `steps`, sign-in steps are
    /// shown until then, each within `steps.step_timeout` of the last; without, a step is
    /// the final answer (which no caller expects). Agent errors come back as
    /// [`ClientError::Agent`].
    fn call(
        &mut self,
        request: &Request,
        steps: Option<Steps<'_>>,
    ) -> Result<Response, ClientError> {
        self.write(request)?;
        let Some(steps) = steps else {
            return self.read(DEFAULT_TIMEOUT);
        };
        loop {
            match self.read(steps.step_timeout)? {
                Response::LoginProgress(step) => (steps.on_step)(&step),
                answer => return Ok(answer),
            }
        }
    }

    /// Sends a streaming request ([`Request::Subscribe`]) and hands every frame to
    /// `on_frame` until it returns `false` or the agent closes the connection. No read
    /// timeout: a quiet stream is a healthy one.
    fn stream(
        &mut self,
        request: &Request,
        mut on_frame: impl FnMut(Response) -> bool,
    ) -> Result<(), ClientError> {
        self.write(request)?;
        if self.welcome.is_none() {
            self.stream
                .get_ref()
                .set_read_timeout(Some(DEFAULT_TIMEOUT))?;
            self.welcome = Some(self.read_frame(DEFAULT_TIMEOUT)?);
        }
        self.stream.get_ref().set_read_timeout(None)?;
        loop {
            let frame = match self.read_frame(Duration::MAX) {
                Ok(frame) => frame,
                Err(ClientError::Io(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(());
                }
                Err(err) => return Err(err),
            };
            match frame {
                Response::Error(err) => return Err(ClientError::Agent(err)),
                frame => {
                    if !on_frame(frame) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Sends a request whose answer nobody reads ([`Request::DelegateHold`]).
    fn send_only(&mut self, request: &Request) -> Result<(), ClientError> {
        self.write(request)
    }

    fn write<T: serde::Serialize>(&mut self, message: &T) -> Result<(), ClientError> {
        let mut frames = Vec::new();
        let first = match self.hello.take() {
            Some(hello) => {
                encode_into(&hello, MAX_REQUEST_LEN, &mut frames)?;
                true
            }
            None => false,
        };
        encode_into(message, MAX_REQUEST_LEN, &mut frames)?;
        match self.stream.get_mut().write_all(&frames) {
            Err(err) if first && err.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(ClientError::Gone)
            }
            result => Ok(result?),
        }
    }

    fn read(&mut self, timeout: Duration) -> Result<Response, ClientError> {
        self.stream.get_ref().set_read_timeout(Some(timeout))?;
        if self.welcome.is_none() {
            let welcome: Welcome = self.read_frame(timeout).map_err(|err| match err {
                ClientError::Io(io)
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    ClientError::Gone
                }
                err => err,
            })?;
            self.welcome = Some(welcome);
        }
        match self.read_frame(timeout)? {
            Response::Error(err) => Err(ClientError::Agent(err)),
            answer => Ok(answer),
        }
    }

    fn read_frame<T: serde::de::DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let timed_out = |err: std::io::Error| match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(timeout)
            }
            _ => ClientError::Io(err),
        };
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).map_err(timed_out)?;
        let mut payload = vec![0u8; frame_len(header, MAX_RESPONSE_LEN)?];
        self.stream.read_exact(&mut payload).map_err(timed_out)?;
        Ok(decode(&payload)?)
    }
}
