//! One typed call per thing the agent does. Each call sends its request and takes the one
//! answer it expects apart; any other answer is [`ClientError::Unexpected`], decided in
//! `Client::expect` alone, so no caller ever matches a [`Response`] by hand.

use std::time::Duration;

use stagepass_proto::approval::{Decision, PendingRequest};
use stagepass_proto::{
    BackstageIdentity, ClaimsReport, ClientSecret, ClientSecretReport, CredentialGrant,
    DelegateRequest, DelegationCreated, DelegationInfo, Flow, LoginProgress, ProfileStatus,
    ProxyLaunch, RemoteGrantRequest, RemoteGranted, RemoteKeyInfo, Request, Response, Secret,
    SignOutReport, StatusEvent, StatusReport, TokenGrant, TokenKind, Tool,
};

use crate::{Client, ClientError};

/// How a sign-in's steps reach the user while the call waits for its end.
pub struct Steps<'a> {
    /// The longest silence between two frames; the agent sends a heartbeat every few seconds
    /// while it waits for the user.
    pub step_timeout: Duration,
    pub on_step: &'a mut dyn FnMut(&LoginProgress),
}

/// Whether a call that needs a signed-in profile may start a sign-in.
pub enum Interaction<'a> {
    /// No: the agent answers "needs sign-in" at once.
    None,
    /// Yes (or join the one under way), showing its steps through `steps`.
    SignIn {
        /// Whether a browser can be opened where the user is (display, SSH session...).
        browser_available: bool,
        steps: Steps<'a>,
    },
}

impl Interaction<'_> {
    fn flags(&self) -> (bool, bool) {
        match self {
            Interaction::None => (false, false),
            Interaction::SignIn {
                browser_available, ..
            } => (true, *browser_available),
        }
    }
}

/// What [`Client::get_token`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `None` picks the only profile of the config.
    pub profile: Option<String>,
    pub kind: TokenKind,
    /// Refresh first when less than this many seconds of validity remain.
    pub min_valid_secs: u64,
}

/// The agent's answer to [`Client::reject_credential`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The profile the URL maps to, when it maps to one.
    pub profile: Option<String>,
    /// Whether the rejected token was the one the agent holds (so the next one is fresh).
    pub marked: bool,
}

/// One frame of [`Client::subscribe`]'s stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The state of every profile: the stream's first frame.
    Snapshot(StatusReport),
    /// One profile's change since.
    Event(StatusEvent),
}

/// The body of the answer variant `$variant`, or `None` for any other answer.
macro_rules! body_of {
    ($variant:path) => {
        |answer| match answer {
            $variant(body) => Some(body),
            _ => None,
        }
    };
}

impl Client {
    pub fn status(&mut self) -> Result<StatusReport, ClientError> {
        self.answer(&Request::Status, body_of!(Response::Status))
    }

    /// A token of `request.profile`; may sign in first when `interaction` allows it.
    pub fn get_token(
        &mut self,
        request: &TokenRequest,
        interaction: Interaction<'_>,
    ) -> Result<TokenGrant, ClientError> {
        let (interactive, browser_available) = interaction.flags();
        let request = Request::GetToken {
            profile: request.profile.clone(),
            kind: request.kind,
            min_valid_secs: request.min_valid_secs,
            interactive,
            browser_available,
        };
        self.answer_interacting(&request, interaction, body_of!(Response::Token))
    }

    /// The claims of the tokens the agent holds for `profile` (never the tokens).
    pub fn claims(&mut self, profile: Option<String>) -> Result<ClaimsReport, ClientError> {
        self.answer(&Request::Claims { profile }, body_of!(Response::Claims))
    }

    /// Runs an interactive sign-in to its end, showing each step through `steps`.
    /// Closing the connection (see [`Client::closer`]) cancels it.
    pub fn login(
        &mut self,
        profile: Option<String>,
        flow: Option<Flow>,
        browser_available: bool,
        steps: Steps<'_>,
    ) -> Result<ProfileStatus, ClientError> {
        let request = Request::Login {
            profile,
            flow,
            browser_available,
        };
        self.exchange(&request, Some(steps), body_of!(Response::SignedIn))
    }

    pub fn logout(&mut self, profile: Option<String>) -> Result<SignOutReport, ClientError> {
        self.answer(&Request::Logout { profile }, body_of!(Response::SignedOut))
    }

    /// A credential for the server at `url` that `tool` is about to call; `None` when the
    /// config maps no profile to it.
    pub fn credential(
        &mut self,
        tool: Tool,
        url: String,
        bearer_ok: bool,
        interaction: Interaction<'_>,
    ) -> Result<Option<CredentialGrant>, ClientError> {
        let (interactive, browser_available) = interaction.flags();
        let request = Request::Credential {
            tool,
            url,
            bearer_ok,
            interactive,
            browser_available,
        };
        self.answer_interacting(&request, interaction, body_of!(Response::Credential))
    }

    /// Tells the agent that the server at `url` rejected `token`.
    pub fn reject_credential(
        &mut self,
        tool: Tool,
        url: String,
        token: Secret<String>,
    ) -> Result<Rejection, ClientError> {
        let request = Request::RejectCredential { tool, url, token };
        self.answer(&request, |answer| match answer {
            Response::Rejected { profile, marked } => Some(Rejection { profile, marked }),
            _ => None,
        })
    }

    pub fn backstage_whoami(
        &mut self,
        profile: Option<String>,
    ) -> Result<BackstageIdentity, ClientError> {
        let request = Request::BackstageWhoami { profile };
        self.answer(&request, body_of!(Response::BackstageIdentity))
    }

    /// A one-time launch URL of the local proxy's `route` (`None`: the only route).
    pub fn proxy_launch(&mut self, route: Option<String>) -> Result<ProxyLaunch, ClientError> {
        let request = Request::ProxyLaunch { route };
        self.answer(&request, body_of!(Response::ProxyLaunch))
    }

    pub fn remote_grant(
        &mut self,
        request: RemoteGrantRequest,
    ) -> Result<RemoteGranted, ClientError> {
        let request = Request::RemoteGrant(request);
        self.answer(&request, body_of!(Response::RemoteGranted))
    }

    pub fn remote_list(&mut self) -> Result<Vec<RemoteKeyInfo>, ClientError> {
        self.answer(&Request::RemoteList, body_of!(Response::RemoteKeys))
    }

    /// Deletes the remote key `name`; answers the revoked key's record.
    pub fn remote_revoke(&mut self, name: String) -> Result<Vec<RemoteKeyInfo>, ClientError> {
        let request = Request::RemoteRevoke { name };
        self.answer(&request, body_of!(Response::RemoteKeys))
    }

    /// Creates a delegation: a key scoped to routes, methods and paths, shown only here.
    pub fn delegate_create(
        &mut self,
        request: DelegateRequest,
    ) -> Result<DelegationCreated, ClientError> {
        let request = Request::DelegateCreate(request);
        self.answer(&request, body_of!(Response::DelegationCreated))
    }

    /// Every delegation, remote keys included; never a key.
    pub fn delegate_list(&mut self) -> Result<Vec<DelegationInfo>, ClientError> {
        self.answer(&Request::DelegateList, body_of!(Response::Delegations))
    }

    /// Revokes the delegation `name` (of any kind); answers its record.
    pub fn delegate_revoke(&mut self, name: String) -> Result<Vec<DelegationInfo>, ClientError> {
        let request = Request::DelegateRevoke { name };
        self.answer(&request, body_of!(Response::Delegations))
    }

    /// Ties the `exec` delegation `name` to this connection: the agent revokes it when the
    /// connection closes. Sends only; keep the client open as long as the delegation should
    /// live, then drop it.
    pub fn delegate_hold(&mut self, name: String) -> Result<(), ClientError> {
        self.send_only(&Request::DelegateHold { name })
    }

    /// The proxied requests of `--ask` delegations waiting for the developer's answer.
    pub fn delegate_pending(&mut self) -> Result<Vec<PendingRequest>, ClientError> {
        self.answer(&Request::DelegatePending, body_of!(Response::Pending))
    }

    /// Answers the waiting request `id`; answers its record.
    pub fn delegate_answer(
        &mut self,
        id: String,
        decision: Decision,
    ) -> Result<Vec<PendingRequest>, ClientError> {
        let request = Request::DelegateAnswer { id, decision };
        self.answer(&request, body_of!(Response::Pending))
    }

    /// Stores the client secret of `profile`'s confidential client in the keychain, or
    /// deletes it (`None`).
    pub fn set_client_secret(
        &mut self,
        profile: String,
        secret: Option<ClientSecret>,
    ) -> Result<ClientSecretReport, ClientError> {
        let request = Request::SetClientSecret { profile, secret };
        self.answer(&request, body_of!(Response::ClientSecret))
    }

    /// Hands the status snapshot and then every change to `on_update` until it returns
    /// `false` or the agent closes the connection. No read timeout: a quiet stream is a
    /// healthy one.
    pub fn subscribe(
        &mut self,
        mut on_update: impl FnMut(Update) -> bool,
    ) -> Result<(), ClientError> {
        let mut failed = None;
        self.stream(&Request::Subscribe, |frame| {
            let update = Client::expect(frame, |frame| match frame {
                Response::Status(report) => Some(Update::Snapshot(report)),
                Response::Event(event) => Some(Update::Event(event)),
                _ => None,
            });
            match update {
                Ok(update) => on_update(update),
                Err(err) => {
                    failed = Some(err);
                    false
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// Asks the agent to stop; it answers before it goes.
    pub fn shutdown(&mut self) -> Result<(), ClientError> {
        self.answer(&Request::Shutdown, |answer| match answer {
            Response::ShuttingDown => Some(()),
            _ => None,
        })
    }

    /// One request, one answer, no sign-in steps.
    fn answer<T>(
        &mut self,
        request: &Request,
        pick: impl FnOnce(Response) -> Option<T>,
    ) -> Result<T, ClientError> {
        self.exchange(request, None, pick)
    }

    fn answer_interacting<T>(
        &mut self,
        request: &Request,
        interaction: Interaction<'_>,
        pick: impl FnOnce(Response) -> Option<T>,
    ) -> Result<T, ClientError> {
        let steps = match interaction {
            Interaction::None => None,
            Interaction::SignIn { steps, .. } => Some(steps),
        };
        self.exchange(request, steps, pick)
    }

    /// Sends `request` and takes its final answer apart with `pick`.
    fn exchange<T>(
        &mut self,
        request: &Request,
        steps: Option<Steps<'_>>,
        pick: impl FnOnce(Response) -> Option<T>,
    ) -> Result<T, ClientError> {
        let answer = self.call(request, steps)?;
        Client::expect(answer, pick)
    }

    /// The one place where an answer other than the expected one becomes
    /// [`ClientError::Unexpected`] (a sign-in step where none was asked for included).
    fn expect<T>(
        answer: Response,
        pick: impl FnOnce(Response) -> Option<T>,
    ) -> Result<T, ClientError> {
        pick(answer).ok_or(ClientError::Unexpected)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;

    use stagepass_core::paths;
    use stagepass_proto::{
        AgentError, ErrorKind, Hello, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, PROTOCOL_VERSION,
        SessionState, Welcome, decode, encode, frame_len,
    };

    use super::*;

    /// An agent that reads the hello and one request, then sends `answers` in order.
    /// Returns the client and what the agent received.
    fn scripted(
        answers: Vec<Response>,
    ) -> (Client, tempfile::TempDir, std::thread::JoinHandle<Request>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let listener = UnixListener::bind(paths::socket_path(dir.path())).unwrap();
        let agent = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut read = || {
                let mut header = [0u8; 4];
                stream.read_exact(&mut header).unwrap();
                let mut payload = vec![0u8; frame_len(header, MAX_REQUEST_LEN).unwrap()];
                stream.read_exact(&mut payload).unwrap();
                payload
            };
            let _hello: Hello = decode(&read()).unwrap();
            let request: Request = decode(&read()).unwrap();
            let welcome = Welcome {
                protocol: PROTOCOL_VERSION,
                agent_version: "test".into(),
                pid: 1,
            };
            stream
                .write_all(&encode(&welcome, MAX_RESPONSE_LEN).unwrap())
                .unwrap();
            for answer in answers {
                stream
                    .write_all(&encode(&answer, MAX_RESPONSE_LEN).unwrap())
                    .unwrap();
            }
            request
        });
        let client = Client::connect(dir.path(), "test").unwrap();
        (client, dir, agent)
    }

    fn signed_out() -> SignOutReport {
        SignOutReport {
            profile: "corp".into(),
            revoked: true,
            note: None,
        }
    }

    #[test]
    fn a_call_returns_the_body_of_its_answer() {
        let (mut client, _dir, agent) = scripted(vec![Response::SignedOut(signed_out())]);
        assert_eq!(client.logout(Some("corp".into())).unwrap(), signed_out());
        assert_eq!(
            agent.join().unwrap(),
            Request::Logout {
                profile: Some("corp".into())
            }
        );
    }

    #[test]
    fn another_answer_than_the_expected_one_is_unexpected() {
        let (mut client, _dir, _agent) = scripted(vec![Response::SignedOut(signed_out())]);
        assert!(matches!(client.status(), Err(ClientError::Unexpected)));
    }

    #[test]
    fn a_sign_in_step_nobody_asked_for_is_unexpected() {
        let step = LoginProgress::Waiting { elapsed_secs: 1 };
        let (mut client, _dir, _agent) = scripted(vec![Response::LoginProgress(step)]);
        let request = TokenRequest {
            profile: None,
            kind: TokenKind::Access,
            min_valid_secs: 0,
        };
        let answer = client.get_token(&request, Interaction::None);
        assert!(matches!(answer, Err(ClientError::Unexpected)));
    }

    #[test]
    fn sign_in_steps_reach_the_caller_before_the_answer() {
        let step = LoginProgress::Waiting { elapsed_secs: 2 };
        let status = ProfileStatus {
            name: "corp".into(),
            issuer: "https://idp.example".into(),
            state: SessionState::SignedIn,
            subject: None,
            email: None,
            access_token_expires_at: None,
            reason: None,
            notes: Vec::new(),
            user: None,
            never_expires: false,
        };
        let (mut client, _dir, agent) = scripted(vec![
            Response::LoginProgress(step.clone()),
            Response::SignedIn(status.clone()),
        ]);
        let mut seen = Vec::new();
        let mut on_step = |step: &LoginProgress| seen.push(step.clone());
        let steps = Steps {
            step_timeout: Duration::from_secs(5),
            on_step: &mut on_step,
        };
        let answer = client.login(None, Some(Flow::Device), false, steps);
        assert_eq!(answer.unwrap(), status);
        assert_eq!(seen, vec![step]);
        assert!(matches!(agent.join().unwrap(), Request::Login { .. }));
    }

    #[test]
    fn an_agent_error_keeps_its_kind() {
        let error = AgentError {
            kind: ErrorKind::NeedsSignIn,
            message: "profile `corp` is not signed in".into(),
            hint: None,
        };
        let (mut client, _dir, _agent) = scripted(vec![Response::Error(error.clone())]);
        match client.claims(None) {
            Err(ClientError::Agent(got)) => assert_eq!(got, error),
            other => panic!("expected the agent's error, got {other:?}"),
        }
    }

    #[test]
    fn an_unexpected_frame_ends_a_subscription_with_an_error() {
        let (mut client, _dir, _agent) = scripted(vec![Response::ShuttingDown]);
        let mut updates = 0;
        let ended = client.subscribe(|_| {
            updates += 1;
            true
        });
        assert!(matches!(ended, Err(ClientError::Unexpected)));
        assert_eq!(updates, 0);
    }
}
