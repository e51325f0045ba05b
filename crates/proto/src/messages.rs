use serde::{Deserialize, Serialize};

use crate::approval::{Decision, PendingRequest};
use crate::{ClientSecret, RemoteKey, Secret};

/// First frame of every connection, sent by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// Program and version of the client, for the agent's log ("stagepass-cli 0.1.0").
    pub client: String,
    /// The client sends one request and nothing after its answer (the CLI's commands, the
    /// credential helpers): the agent closes the connection once it has answered instead of
    /// waiting for the client to hang up, which spares it a wake-up per call. Absent (an older
    /// client): `false`. An older agent ignores it and waits for the hang-up as before.
    #[serde(default)]
    pub single_request: bool,
}

/// The agent's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub agent_version: String,
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Status,
    GetToken {
        /// `None` picks the only profile of the config.
        profile: Option<String>,
        kind: TokenKind,
        /// Refresh first when less than this many seconds of validity remain.
        #[serde(default)]
        min_valid_secs: u64,
        /// When the profile needs a sign-in: `true` starts one (or joins the one already
        /// under way) and streams its progress like [`Request::Login`]; `false` answers
        /// [`ErrorKind::NeedsSignIn`] at once.
        #[serde(default)]
        interactive: bool,
        /// As in [`Request::Login`], for an interactive sign-in.
        #[serde(default)]
        browser_available: bool,
    },
    Claims {
        profile: Option<String>,
    },
    /// Starts an interactive sign-in. The agent streams [`Response::LoginProgress`] frames and
    /// ends with [`Response::SignedIn`] or [`Response::Error`]. Closing the connection cancels.
    Login {
        profile: Option<String>,
        /// An explicit choice (`--browser` / `--device`); `None` applies the profile's `flow`.
        flow: Option<Flow>,
        /// Whether the client can open a browser where the user is (it knows the user's
        /// environment: display, SSH session, Codespace); used when the flow is `auto`.
        browser_available: bool,
    },
    Logout {
        profile: Option<String>,
    },
    /// Streams a [`Response::Status`] snapshot, then a [`Response::Event`] for every change
    /// (signed in, refreshed, needs sign-in, refresh failing, signed out) until the client
    /// closes the connection. The tray lives on this.
    Subscribe,
    Shutdown,
    /// A credential for a server a tool is about to call. The agent maps `url` to a profile
    /// with the config's `[[git]]` / `[[docker]]` tables and answers
    /// [`Response::Credential`]; `None` there means the URL is not mapped, so the tool can
    /// fall through to its next helper. Sign-in as in [`Request::GetToken`].
    Credential {
        tool: Tool,
        url: String,
        /// The tool can send `Authorization: Bearer` (git announced `capability[]=authtype`).
        #[serde(default)]
        bearer_ok: bool,
        #[serde(default)]
        interactive: bool,
        #[serde(default)]
        browser_available: bool,
    },
    /// The server at `url` rejected `token`: the agent refreshes before it hands that token
    /// out again. Never a sign-out.
    RejectCredential {
        tool: Tool,
        url: String,
        token: Secret<String>,
    },
    /// Who the user of a `kind = "backstage"` profile is in Backstage. The agent asks
    /// Backstage with the token it holds (the token never leaves it) and answers
    /// [`Response::BackstageIdentity`]. Never starts a sign-in.
    BackstageWhoami {
        profile: Option<String>,
    },
    /// A one-time launch URL for the local proxy: opened in a browser, it sets the session
    /// cookie of the route's origin and lands on the route. `None` picks the only route.
    /// Answered with [`Response::ProxyLaunch`].
    ProxyLaunch {
        route: Option<String>,
    },
    /// Mints a remote key (see [`crate::remote`]); answered with [`Response::RemoteGranted`],
    /// the only time the key itself is ever shown.
    RemoteGrant(RemoteGrantRequest),
    /// The remote keys, never the keys themselves; answered with [`Response::RemoteKeys`].
    RemoteList,
    /// Deletes a remote key at once; answered with [`Response::RemoteKeys`] holding the
    /// revoked key's record.
    RemoteRevoke {
        name: String,
    },
    /// Creates a delegation (a named, expiring, revocable key scoped to routes, methods and
    /// paths); answered with [`Response::DelegationCreated`], the only time the key is shown.
    DelegateCreate(DelegateRequest),
    /// Every delegation, remote keys included, never a key; answered with
    /// [`Response::Delegations`].
    DelegateList,
    /// Revokes a delegation of any kind at once; answered with [`Response::Delegations`]
    /// holding its record.
    DelegateRevoke {
        name: String,
    },
    /// Ties an `exec` delegation to this connection: the agent revokes it when the
    /// connection closes (the CLI that runs the process exited, crashed or was killed).
    /// The client sends nothing after it and reads no answer.
    DelegateHold {
        name: String,
    },
    /// The proxied requests waiting for the developer's answer (delegations made with
    /// `ask`); answered with [`Response::Pending`].
    DelegatePending,
    /// Answers a waiting request; answered with [`Response::Pending`] holding it.
    DelegateAnswer {
        id: String,
        decision: Decision,
    },
    /// Stores the client secret of a confidential client in the keychain beside the
    /// profile's login, or deletes it (`secret: None`). The secret travels only over this
    /// socket, never in argv or a file. Answered with [`Response::ClientSecret`].
    SetClientSecret {
        profile: String,
        secret: Option<ClientSecret>,
    },
}

/// What `stagepass remote grant` asks for. Empty `routes` and `profiles` mean the default
/// profile and the routes that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteGrantRequest {
    /// `None`: the agent picks `remote-XXXXXX`.
    pub name: Option<String>,
    pub ttl_secs: u64,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    /// The loopback port the remote side reaches the proxy on, when the forward does not keep
    /// the proxy's own port (`ssh -R 127.0.0.1:RPORT:127.0.0.1:PORT`); allowed in Host.
    #[serde(default)]
    pub remote_port: Option<u16>,
}

/// A remote key's record, as `remote list` shows it: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteKeyInfo {
    pub name: String,
    /// Proxy routes the key may use.
    pub routes: Vec<String>,
    /// Profiles whose access tokens the key may get.
    pub profiles: Vec<String>,
    pub remote_port: Option<u16>,
    /// Unix seconds.
    pub created_at: u64,
    pub expires_at: u64,
    pub last_used_at: Option<u64>,
}

/// The answer to [`Request::RemoteGrant`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteGranted {
    /// Shown once: the agent keeps only its SHA-256.
    pub key: RemoteKey,
    pub info: RemoteKeyInfo,
    /// `http://127.0.0.1:PORT`: the listener the remote side reaches through its forward.
    pub proxy_url: String,
}

/// What a delegation was made for. Remote keys are one kind of delegation: one store, one
/// check, one audit path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationKind {
    /// `stagepass remote grant`: a `stagepass` on the far side of a port forward; may get
    /// access tokens of its profiles.
    #[default]
    Remote,
    /// `stagepass delegate create`: a script, a CI job or an AI agent on this machine; proxy
    /// access only.
    Delegate,
    /// `stagepass exec --agent`: dies with the process it was made for.
    Exec,
}

/// What `stagepass delegate create` (and `exec --agent`) asks for. The agent parses it into
/// types and refuses what it cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegateRequest {
    pub name: String,
    pub kind: DelegationKind,
    pub ttl_secs: u64,
    pub routes: Vec<String>,
    /// Routes of these profiles come along.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// HTTP methods; `None`: every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Path prefixes, `/prefix/` for every route or `ROUTE:/prefix/` for one.
    #[serde(default)]
    pub paths: Vec<String>,
    /// `Some(secs)`: a request outside the scope waits this long for the developer's answer
    /// instead of being refused at once ([`crate::approval`]).
    #[serde(default)]
    pub ask_timeout_secs: Option<u64>,
    /// The OAuth scopes a raw token for the delegation may carry; empty with no
    /// `token_audience`: no raw tokens (proxy access only).
    #[serde(default)]
    pub token_scopes: Vec<String>,
    /// The audience a raw token is narrowed to (a client ID at Keycloak).
    #[serde(default)]
    pub token_audience: Option<String>,
}

/// How a delegation gets raw tokens narrower than the developer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenMethod {
    /// OAuth 2.0 Token Exchange (RFC 8693): audience and scopes narrowed.
    Exchange,
    /// A refresh asking for fewer scopes (RFC 6749 §6): scopes narrowed, audience as is.
    FewerScopes,
    /// None applies: the delegation reaches its routes through the proxy only.
    ProxyOnly,
}

/// What raw tokens a delegation may get, and how they are narrowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedTokens {
    pub profile: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub method: TokenMethod,
    /// Why this method (and not a narrower one) applies.
    pub why: String,
}

/// What `--read-only` means: the safe methods of RFC 9110 §9.2.1 that tools use to read
/// (TRACE left out: it echoes the request, credentials included).
pub const READ_ONLY_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// A delegation's record, as `delegate list` shows it: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationInfo {
    pub name: String,
    pub kind: DelegationKind,
    pub routes: Vec<String>,
    pub profiles: Vec<String>,
    /// `None`: every method.
    pub methods: Option<Vec<String>>,
    pub paths: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub expires_at: u64,
    pub last_used_at: Option<u64>,
    /// `Some(secs)`: requests outside the scope wait this long for an answer.
    #[serde(default)]
    pub ask_timeout_secs: Option<u64>,
    /// What "allow for this delegation" answers added: `METHOD ROUTE:/prefix`.
    #[serde(default)]
    pub approved: Vec<String>,
    /// `None`: no raw tokens were asked for (proxy access only).
    #[serde(default)]
    pub tokens: Option<DelegatedTokens>,
}

/// The answer to [`Request::DelegateCreate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationCreated {
    /// Shown once: the agent keeps only its SHA-256. Sent as `Proxy-Authorization: Bearer`.
    pub key: RemoteKey,
    pub info: DelegationInfo,
    /// `http://127.0.0.1:PORT`: the proxy.
    pub proxy_url: String,
}

/// A tool the agent serves credentials to through a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Git,
    Docker,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    #[default]
    Access,
    Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Authorization code + PKCE over a loopback redirect (RFC 8252).
    Browser,
    /// Device authorization grant (RFC 8628).
    Device,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body", rename_all = "snake_case")]
pub enum Response {
    Status(StatusReport),
    Token(TokenGrant),
    Claims(ClaimsReport),
    LoginProgress(LoginProgress),
    SignedIn(ProfileStatus),
    SignedOut(SignOutReport),
    Event(StatusEvent),
    ShuttingDown,
    Credential(Option<CredentialGrant>),
    /// Whether the rejected token was the one the agent holds for `profile` (so the next
    /// one handed out is fresh).
    Rejected {
        profile: Option<String>,
        marked: bool,
    },
    BackstageIdentity(BackstageIdentity),
    ProxyLaunch(ProxyLaunch),
    RemoteGranted(RemoteGranted),
    RemoteKeys(Vec<RemoteKeyInfo>),
    DelegationCreated(DelegationCreated),
    Delegations(Vec<DelegationInfo>),
    Pending(Vec<PendingRequest>),
    ClientSecret(ClientSecretReport),
    Error(AgentError),
}

/// The answer to [`Request::SetClientSecret`]; never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSecretReport {
    pub profile: String,
    /// Stored, or, for a deletion, whether there was one to delete.
    pub changed: bool,
    /// Whether the profile says `client_auth = "secret"`, so the secret is sent.
    pub in_use: bool,
}

/// The answer to [`Request::ProxyLaunch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyLaunch {
    pub route: String,
    /// Valid once, for a minute. It is a credential: open it, do not log it.
    pub url: Secret<String>,
}

/// The local proxy's state, in [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStatus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub serving: bool,
    /// Why it is not serving (the port is taken...).
    pub reason: Option<String>,
    /// Each route's name and local URL.
    pub routes: Vec<(String, String)>,
}

/// The answer to [`Request::BackstageWhoami`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackstageIdentity {
    pub profile: String,
    /// The backend's base URL.
    pub url: String,
    /// `user:default/alice`, from Backstage's UserInfo endpoint.
    pub user_entity_ref: String,
    /// The refs whose ownership the user shares (the user and their groups), from UserInfo.
    pub ownership_entity_refs: Vec<String>,
    /// `spec.profile.displayName` of the catalog's User entity.
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The catalog's User entity; `None` when the catalog has none under that ref.
    pub entity: Option<serde_json::Value>,
}

/// A token plus how to present it to the mapped server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialGrant {
    pub grant: TokenGrant,
    pub username: String,
    /// Send it as `Authorization: Bearer` rather than as a Basic password.
    pub bearer: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub agent_version: String,
    pub agent_pid: u32,
    pub config_path: String,
    pub profiles: Vec<ProfileStatus>,
    /// `None` when the agent runs no proxy (no `[[route]]` when it started).
    #[serde(default)]
    pub proxy: Option<ProxyStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    SignedIn,
    SignedOut,
    /// A login exists but the IdP rejected it (revoked, expired, reused refresh token).
    NeedsSignIn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileStatus {
    pub name: String,
    pub issuer: String,
    pub state: SessionState,
    pub subject: Option<String>,
    pub email: Option<String>,
    /// Unix seconds; `None` when no access token is held in memory.
    pub access_token_expires_at: Option<u64>,
    /// Why the profile needs a sign-in, or why its state could not be read.
    pub reason: Option<String>,
    /// Things worth knowing about the profile's setup (e.g. a client_id shared with
    /// another tool), for `status` and the tray.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Who signed in where the provider names users by a handle rather than an email
    /// (GitHub: `login (name, id N)`), escaped for one line. Shown before `email`.
    #[serde(default)]
    pub user: Option<String>,
    /// The access token in memory never expires (a GitHub OAuth App's).
    #[serde(default)]
    pub never_expires: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenGrant {
    pub profile: String,
    pub token: Secret<String>,
    pub token_type: String,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Whom the token is for: the profile's configured audience for an access token, the
    /// client_id for an id_token.
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub kind: TokenKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimsReport {
    pub profile: String,
    pub id_token: Option<ClaimSet>,
    pub access_token: Option<ClaimSet>,
    /// Who signed in, from a provider's user API where there is no id_token (GitHub's
    /// `GET /user`).
    #[serde(default)]
    pub user: Option<ClaimSet>,
    /// Whether the agent holds a refresh token, and its lifetime when the token says (a JWT
    /// refresh token, as Keycloak issues). Never the token itself.
    #[serde(default)]
    pub refresh_token: RefreshTokenState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefreshTokenState {
    /// An agent that does not report it.
    #[default]
    Unknown,
    /// The IdP issued none: the login ends when the access token expires.
    None,
    Held {
        /// Unix seconds, from the token's own claims when it is a JWT.
        issued_at: Option<u64>,
        expires_at: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimSet {
    /// Whether the agent checked the signature and the standard claims of this token.
    pub verified: bool,
    /// How (or why not) the claims were checked, for the user.
    pub note: String,
    /// Unix seconds of the check, when there was one.
    pub verified_at: Option<u64>,
    pub claims: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LoginProgress {
    /// The client opens this URL in the user's browser (or prints it).
    OpenBrowser { url: String },
    DeviceCode {
        verification_uri: String,
        verification_uri_complete: Option<String>,
        user_code: String,
        /// Unix seconds after which the code is dead.
        expires_at: u64,
    },
    /// Sent every few seconds while waiting, so the client can show progress and its
    /// per-read timeout does not fire during a long sign-in.
    Waiting { elapsed_secs: u64 },
    /// A sign-in for this profile was already under way (started by another program); this
    /// request waits for it instead of opening another browser tab.
    Joined { started_by_pid: Option<i32> },
}

/// A change of a profile's state, as streamed to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub kind: EventKind,
    /// The profile's state after the change.
    pub profile: ProfileStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SignedIn,
    Refreshed,
    NeedsSignIn,
    RefreshFailing,
    SignedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOutReport {
    pub profile: String,
    /// Whether the IdP confirmed the revocation of the refresh token.
    pub revoked: bool,
    /// Why nothing was revoked at the IdP, when it was not.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    pub kind: ErrorKind,
    pub message: String,
    /// What the user should do next ("run `stagepass login corp`").
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request names something that does not exist (unknown profile, ambiguous default).
    BadRequest,
    Config,
    NeedsSignIn,
    /// The IdP answered, and refused (invalid_client, bad redirect URI, bad id_token...).
    Idp,
    /// The IdP could not be reached, timed out or answered with a server error.
    IdpUnreachable,
    Keychain,
    /// The user denied the sign-in, or it expired or was cancelled before it completed.
    SignInAborted,
    ProtocolMismatch,
    Internal,
    /// A remote key was refused: unknown, revoked, expired, or not scoped for the request.
    RemoteKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An older client's hello has no `single_request`: its connection stays open for more.
    #[test]
    fn a_hello_without_single_request_keeps_the_connection() {
        let hello: Hello =
            serde_json::from_str(r#"{"protocol":7,"client":"stagepass-cli 0.1.0"}"#).unwrap();
        assert!(!hello.single_request);
        let hello: Hello =
            serde_json::from_str(r#"{"protocol":7,"client":"x","single_request":true}"#).unwrap();
        assert!(hello.single_request);
    }
}
