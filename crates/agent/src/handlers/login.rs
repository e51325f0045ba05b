//! Interactive sign-in, streamed to the client as progress frames.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stagepass_core::clock::unix_secs;
use stagepass_core::config::{FlowPreference, OfflineAccess, Profile};
use stagepass_core::oidc::Provider;
use stagepass_core::profile::ClientAuth;
use stagepass_core::tokens::TokenSet;
use stagepass_proto::{AgentError, ErrorKind, Flow, LoginProgress, Response, TokenKind};

use crate::conn::Connection;
use crate::errors;
use crate::loopback::{LoopbackListener, Page};
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;

/// How long a browser sign-in may take before the listener closes.
const BROWSER_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a waiting client hears from the agent; well under the client's read timeout.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a second sign-in waits for a first one on the same profile.
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// What the caller of an interactive sign-in brings.
pub(crate) struct SignInRequest {
    /// An explicit choice; `None` applies the profile's `flow`.
    pub flow: Option<Flow>,
    pub browser_available: bool,
    pub pid: Option<i32>,
}

impl SignInRequest {
    /// The sign-in a token request may start: only for a caller that can take part in one,
    /// and with the profile's own flow.
    pub(crate) fn when(
        interactive: bool,
        browser_available: bool,
        pid: Option<i32>,
    ) -> Option<SignInRequest> {
        interactive.then_some(SignInRequest {
            flow: None,
            browser_available,
            pid,
        })
    }
}

/// A sign-in under way, shared by every caller that needs it: the first caller leads it
/// (its client opens the browser or shows the code), later ones wait for its outcome.
pub(crate) struct SharedLogin {
    started_by: Option<i32>,
    outcome: tokio::sync::watch::Sender<Option<Outcome>>,
    /// `logout` ends the sign-in rather than waiting minutes for a user who changed their mind.
    cancel: tokio::sync::Notify,
}

/// How a shared sign-in ended, for the callers who joined it.
#[derive(Clone)]
enum Outcome {
    Done(Result<(), AgentError>),
    /// Its leader's client went away, which ends the sign-in unanswered: one who joined it
    /// (say a `login` run right after the first was killed) still wants one, and leads its own.
    Abandoned,
}

/// Cancels the sign-in under way for `name`, if any: its callers get "cancelled by logout",
/// and dropping it closes the loopback listener or stops the device polling.
pub(crate) fn cancel_pending(agent: &Agent, name: &str) -> bool {
    let pending = agent
        .pending_logins
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match pending.get(name) {
        Some(shared) => {
            // A stored permit: the leader sees it even before it starts waiting.
            shared.cancel.notify_one();
            true
        }
        None => false,
    }
}

pub(crate) async fn login(
    agent: &Agent,
    conn: &mut Connection,
    requested: Option<&str>,
    request: SignInRequest,
) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    if profile.via().is_some() {
        // Signed in when its IdP profile is: sign that one in only when it needs it, then
        // fetch the Backstage token, which proves the proxy path works.
        let session = agent.session(&name, &profile);
        let any_kind = TokenKind::Access;
        if let Err(err) = session::token(agent, &session, any_kind, Duration::ZERO).await {
            if err.kind != ErrorKind::NeedsSignIn {
                return Err(err);
            }
            let via = session::sign_in_profile(agent, &name);
            sign_in(agent, conn, &via, request).await?;
            session::token(agent, &session, any_kind, Duration::ZERO).await?;
        }
        return Ok(Response::SignedIn(session::profile_status(
            agent, &session, None,
        )));
    }
    sign_in(agent, conn, &name, request).await?;
    // The config may have changed during a sign-in of minutes.
    let session = {
        let (name, profile) = resolve_profile(agent, Some(&name))?;
        agent.session(&name, &profile)
    };
    Ok(Response::SignedIn(session::profile_status(
        agent, &session, None,
    )))
}

/// Signs `name` in, or waits for the sign-in already under way for it: ten commands that
/// need a sign-in at once open one browser tab, not ten.
pub(crate) async fn sign_in(
    agent: &Agent,
    conn: &mut Connection,
    name: &str,
    request: SignInRequest,
) -> Result<(), AgentError> {
    let leading = loop {
        let joined = {
            let mut pending = agent
                .pending_logins
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match pending.get(name) {
                Some(shared) => Err(shared.clone()),
                None => {
                    let shared = Arc::new(SharedLogin {
                        started_by: request.pid,
                        outcome: tokio::sync::watch::channel(None).0,
                        cancel: tokio::sync::Notify::new(),
                    });
                    pending.insert(name.to_string(), shared.clone());
                    Ok(shared)
                }
            }
        };
        match joined {
            Ok(leading) => break leading,
            Err(shared) => match join_sign_in(conn, &shared).await? {
                Outcome::Done(result) => return result,
                Outcome::Abandoned => continue,
            },
        }
    };
    let result = lead_sign_in(agent, conn, name, request, &leading.cancel).await;
    let shared = agent
        .pending_logins
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name);
    if let Some(shared) = shared {
        let outcome = match &result {
            Err(err) if *err == client_gone() => Outcome::Abandoned,
            result => Outcome::Done(result.clone()),
        };
        shared.outcome.send_replace(Some(outcome));
    }
    result
}

/// Waits for the sign-in another caller leads and shares its outcome.
async fn join_sign_in(conn: &mut Connection, shared: &SharedLogin) -> Result<Outcome, AgentError> {
    progress(
        conn,
        LoginProgress::Joined {
            started_by_pid: shared.started_by,
        },
    )
    .await?;
    let mut outcome = shared.outcome.subscribe();
    with_heartbeats(conn, async {
        match outcome.wait_for(Option::is_some).await {
            Ok(done) => Ok(done.clone().unwrap_or(Outcome::Abandoned)),
            // The leader was dropped without an answer.
            Err(_) => Ok(Outcome::Abandoned),
        }
    })
    .await
}

async fn lead_sign_in(
    agent: &Agent,
    conn: &mut Connection,
    name: &str,
    request: SignInRequest,
    cancel: &tokio::sync::Notify,
) -> Result<(), AgentError> {
    let (name, profile) = resolve_profile(agent, Some(name))?;
    let flow = choose_flow(&name, &profile, &request)?;
    let session = agent.session(&name, &profile);
    let Ok(held) = tokio::time::timeout(BUSY_WAIT, session.exclusive()).await else {
        return Err(errors::reply(
            ErrorKind::BadRequest,
            format!("profile `{name}` is busy refreshing or signing out"),
            Some("retry in a moment".into()),
        ));
    };
    session::check_keychain(agent, &session).await?;
    // Only an access_type profile asks differently with one held (prompt=consent or not).
    let holds_refresh_token = profile.offline_access() == OfflineAccess::AccessType
        && session::holds_refresh_token(agent, &session, &held).await;
    let provider = agent
        .provider(&name, &profile)
        .await
        .map_err(|err| errors::from_core(&err, Some(&name)))?;
    // Cancellable only while waiting for the user: once tokens exist, they are persisted
    // before logout may delete them, or a logout could leave a login in the keychain.
    let tokens = tokio::select! {
        tokens = async {
            match flow {
                Flow::Browser => {
                    browser_sign_in(agent, conn, &name, &provider, holds_refresh_token).await
                }
                Flow::Device => device_sign_in(agent, conn, &name, &provider).await,
            }
        } => tokens?,
        () = cancel.notified() => {
            return Err(errors::reply(
                ErrorKind::SignInAborted,
                format!("the sign-in to `{name}` was cancelled by `stagepass logout`"),
                None,
            ));
        }
    };
    tracing::info!(profile = %name, flow = ?flow, "signed in");
    session::signed_in(agent, &session, tokens, &held).await
}

/// The flow the request asks for, else the profile's. A GitHub app's web flow needs its
/// client secret for the code exchange: without one, GitHub signs in with the device flow.
fn choose_flow(name: &str, profile: &Profile, request: &SignInRequest) -> Result<Flow, AgentError> {
    let web_flow_possible =
        profile.github_url().is_none() || profile.client_auth() == ClientAuth::Secret;
    let flow = request.flow.unwrap_or(match profile.flow {
        _ if !web_flow_possible => Flow::Device,
        FlowPreference::Browser => Flow::Browser,
        FlowPreference::Device => Flow::Device,
        FlowPreference::Auto if request.browser_available => Flow::Browser,
        FlowPreference::Auto => Flow::Device,
    });
    if flow == Flow::Browser && !web_flow_possible {
        return Err(errors::reply(
            ErrorKind::Config,
            format!(
                "profile `{name}`: GitHub's browser sign-in needs the app's client secret for \
                 the code exchange"
            ),
            Some(format!(
                "use `stagepass login {name} --device`, or set client_auth = \"secret\" and run \
                 `stagepass config set-secret {name}`"
            )),
        ));
    }
    Ok(flow)
}

async fn browser_sign_in(
    agent: &Agent,
    conn: &mut Connection,
    name: &str,
    provider: &Provider,
    holds_refresh_token: bool,
) -> Result<TokenSet, AgentError> {
    let core_error = |err: stagepass_core::Error| errors::from_core(&err, Some(name));
    let listener = LoopbackListener::bind().await.map_err(|err| {
        errors::reply(
            ErrorKind::Internal,
            format!("cannot listen on 127.0.0.1 for the sign-in redirect: {err}"),
            Some("use `stagepass login --device`".into()),
        )
    })?;
    let pending = provider
        .authorization_request(&listener.redirect_uri, holds_refresh_token)
        .map_err(core_error)?;
    provider
        .probe_authorization(&pending, &agent.deps.http)
        .await
        .map_err(core_error)?;
    progress(
        conn,
        LoginProgress::OpenBrowser {
            url: pending.url.to_string(),
        },
    )
    .await?;
    let (code, callback) = with_heartbeats(conn, async {
        tokio::time::timeout(
            BROWSER_SIGN_IN_TIMEOUT,
            listener.wait_for_callback(&pending, provider),
        )
        .await
        .map_err(|_| {
            errors::reply(
                ErrorKind::SignInAborted,
                format!(
                    "no answer from the browser within {} minutes",
                    BROWSER_SIGN_IN_TIMEOUT.as_secs() / 60
                ),
                Some(format!("{} to try again", errors::login_hint(name))),
            )
        })
    })
    .await?;
    let result = match code {
        Ok(code) => provider
            .exchange_code(pending, code, &agent.deps.http, agent.now())
            .await
            .map_err(core_error),
        Err(err) => Err(core_error(err)),
    };
    let page = match &result {
        Ok(tokens) => Page::signed_in(name, tokens.email().or(tokens.subject())),
        Err(err) => Page::failed(&err.message, err.hint.as_deref()),
    };
    callback.finish(page).await;
    result
}

async fn device_sign_in(
    agent: &Agent,
    conn: &mut Connection,
    name: &str,
    provider: &Provider,
) -> Result<TokenSet, AgentError> {
    let core_error = |err: stagepass_core::Error| errors::from_core(&err, Some(name));
    let authorization = provider
        .start_device_authorization(&agent.deps.http)
        .await
        .map_err(core_error)?;
    progress(
        conn,
        LoginProgress::DeviceCode {
            verification_uri: authorization.verification_uri.clone(),
            verification_uri_complete: authorization.verification_uri_complete.clone(),
            user_code: authorization.user_code.clone(),
            expires_at: unix_secs(agent.now() + authorization.expires_in),
        },
    )
    .await?;
    with_heartbeats(conn, async {
        provider
            .finish_device_authorization(&authorization, &agent.deps.http, || agent.now())
            .await
            .map_err(core_error)
    })
    .await
}

async fn progress(conn: &mut Connection, step: LoginProgress) -> Result<(), AgentError> {
    conn.write(&Response::LoginProgress(step))
        .await
        .map_err(|_| client_gone())
}

/// The one error that says the caller's client went away (compared by value above).
fn client_gone() -> AgentError {
    errors::reply(
        ErrorKind::SignInAborted,
        "the sign-in was cancelled: the client went away",
        None,
    )
}

/// Runs `work` while telling the client every [`HEARTBEAT`] that the agent still waits. A
/// client that went away cancels the work (dropping it closes the loopback listener).
async fn with_heartbeats<T>(
    conn: &mut Connection,
    work: impl Future<Output = Result<T, AgentError>>,
) -> Result<T, AgentError> {
    let started = Instant::now();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = ticker.tick() => {
                let elapsed_secs = started.elapsed().as_secs();
                progress(conn, LoginProgress::Waiting { elapsed_secs }).await?;
            }
        }
    }
}
