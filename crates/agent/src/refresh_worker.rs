//! Refreshes run as one uninterruptible transaction in a short-lived child process.
//!
//! Why: an IdP that rotates refresh tokens strictly has consumed the old refresh token by the
//! time its answer arrives, and revokes the whole grant if the old one is ever presented
//! again. If the agent died between that answer and the keychain write, the only working
//! refresh token would die with it. So the exchange and the write happen in a child in its
//! own process group: killing the agent (kill -9 included) does not interrupt them.
//!
//! Write order, in the worker: (1) take the profile's refresh lock, (2) refresh at the IdP,
//! (3) write the rotated refresh token to the keychain, (4) answer the agent, (5) release the
//! lock (a killed worker releases it by dying). The agent hands out the new access token only after (4), and a starting
//! agent waits for the lock before it reads the keychain, so it never reads the keychain
//! between (2) and (3). When the agent does not hear back, it forgets its copy of the refresh
//! token and reads the keychain again under the lock.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use stagepass_core::clock::unix_secs;
use stagepass_core::config::Profile;
use stagepass_core::http::{HttpClient, HttpError, HttpLimits};
use stagepass_core::oidc::Provider;
use stagepass_core::paths;
use stagepass_core::store::{KeychainError, LoginStore, OsKeychain, StoredLogin};
use stagepass_core::tokens::{RefreshLifetime, TokenSet};
use stagepass_core::{ClientSecret, IdToken, RefreshToken};
use stagepass_proto::{AgentError, ErrorKind};

use crate::errors;
use crate::worker_pool::WorkerPool;

/// The flag that turns `stagepass-agent` into a refresh worker.
pub const WORKER_FLAG: &str = "--refresh-worker";
/// The IdP call and the keychain write are each bounded well below this.
const WORKER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after a refresh the next spare worker starts.
const SPARE_DELAY: Duration = Duration::from_millis(250);
/// How long a starting agent waits for a worker left behind by its predecessor.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What one refresh needs; sent to the worker on stdin, never in argv.
#[derive(Serialize, Deserialize)]
pub(crate) struct RefreshJob {
    pub profile: String,
    pub settings: Profile,
    pub refresh_token: RefreshToken,
    pub previous_id: Option<(IdToken, serde_json::Value)>,
    /// The refresh token's life as the IdP stated it, carried over when it is not rotated.
    #[serde(default)]
    pub refresh_lifetime: Option<RefreshLifetime>,
    /// Who signed in, for a provider without id_tokens (GitHub): its refresh answers do not
    /// say, so the new tokens carry this over.
    #[serde(default)]
    pub identity: Option<serde_json::Value>,
    /// `paths::refresh_lock_dir`: shared by every agent that uses the same keychain.
    pub lock_dir: PathBuf,
    /// Ask for these scopes only (RFC 6749 §6), for a delegation's narrower access token
    /// ([`crate::delegation::minted`]); the rotated refresh token is saved all the same.
    #[serde(default)]
    pub narrow_scope: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WorkerRequest {
    job: RefreshJob,
    provider: serde_json::Value,
    /// A confidential client's secret: [`Provider::export`] leaves it out.
    #[serde(default)]
    client_secret: Option<ClientSecret>,
}

#[derive(Debug, Serialize, Deserialize)]
// Not `expect`: the sizes differ by platform, and on some the lint does not fire.
#[allow(
    clippy::large_enum_variant,
    reason = "one outcome per refresh, moved once from the worker's answer to the session"
)]
pub(crate) enum RefreshOutcome {
    /// New tokens; `saved` says whether the keychain holds their refresh token.
    Refreshed {
        tokens: TokenSet,
        saved: Result<(), AgentError>,
        #[serde(default)]
        took: RefreshTimings,
        /// The `scope` the IdP answered, for a narrowed refresh.
        #[serde(default)]
        granted_scope: Option<String>,
    },
    /// The IdP refused or could not be reached; `login_dead` when only a new sign-in helps.
    Failed {
        error: AgentError,
        reason: String,
        login_dead: bool,
        bad_id_token: bool,
    },
    /// The worker gave no answer: whether the IdP rotated the token is unknown, so the agent
    /// must read the keychain again before the next refresh.
    Unknown { error: AgentError },
}

/// Where a refresh's time went, as the one who ran it measured (a worker, or the agent): the
/// agent logs it, so a slow IdP can be told from a slow keychain and from the agent itself.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct RefreshTimings {
    /// Reading the keychain for a newer refresh token, in µs.
    pub keychain_read_us: u64,
    /// The IdP's token endpoint (and its id_token checks), in µs.
    pub idp_us: u64,
    /// Writing the new refresh token to the keychain, in µs.
    pub keychain_write_us: u64,
}

/// Microseconds since `start`, for [`RefreshTimings`].
fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl RefreshOutcome {
    pub(crate) fn failed(err: &stagepass_core::Error, profile: &str) -> RefreshOutcome {
        RefreshOutcome::Failed {
            error: errors::from_core(err, Some(profile)),
            reason: err.to_string(),
            login_dead: err.login_is_dead(),
            bad_id_token: matches!(err, stagepass_core::Error::IdToken(_)),
        }
    }
}

/// What the keychain keeps of a token set: its refresh token, or for GitHub an access token
/// that never expires (it is then the login). Nothing when neither.
pub(crate) fn stored_login(
    settings: &Profile,
    tokens: &TokenSet,
    now: SystemTime,
) -> Option<StoredLogin> {
    let (issuer, client_id) = (
        settings.issuer().into_owned(),
        settings.client_id().to_string(),
    );
    let mut login = match &tokens.refresh_token {
        Some(refresh_token) => StoredLogin::new(
            issuer,
            client_id,
            refresh_token.clone(),
            tokens.id_token.clone(),
            unix_secs(now),
        ),
        None if settings.github_url().is_some() && tokens.expires_at.is_none() => {
            StoredLogin::non_expiring(
                issuer,
                client_id,
                tokens.access_token.clone(),
                unix_secs(now),
            )
        }
        None => return None,
    };
    login.refresh_lifetime = tokens.refresh_lifetime;
    if tokens.id_token.is_none() {
        login.identity = tokens.id_claims.clone();
    }
    Some(login)
}

/// The id_token a stored login was last refreshed with, to check the next one against.
pub(crate) fn previous_id(stored: &StoredLogin) -> Option<(IdToken, serde_json::Value)> {
    let id_token = stored.id_token.clone()?;
    let claims = stagepass_core::jwt::unverified_claims(id_token.expose())?;
    Some((id_token, claims))
}

/// The transaction itself: refresh at the IdP, then save to the keychain.
pub(crate) async fn refresh_and_save(
    job: &RefreshJob,
    provider: &Provider,
    http: &HttpClient,
    logins: &LoginStore,
    now: SystemTime,
) -> RefreshOutcome {
    // Under the profile's refresh lock the keychain holds the newest refresh token. The one
    // in `job` can be older: an agent killed after its worker had read the job but before
    // that worker took the lock starts a successor that reads the keychain too early. A
    // strict IdP revokes the whole grant when a consumed refresh token comes back, so the
    // keychain's token wins whenever the two differ.
    let mut took = RefreshTimings::default();
    let reading = Instant::now();
    let newer = {
        let (logins, profile) = (logins.clone(), job.profile.clone());
        tokio::task::spawn_blocking(move || logins.load(&profile))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .filter(|stored| {
                stored.belongs_to(&job.settings.issuer(), job.settings.client_id())
                    && stored
                        .refresh_token
                        .as_ref()
                        .is_some_and(|token| token.expose() != job.refresh_token.expose())
            })
    };
    took.keychain_read_us = micros_since(reading);
    let (refresh_token, previous_id, previous_lifetime, identity) = match &newer {
        Some(
            stored @ StoredLogin {
                refresh_token: Some(token),
                ..
            },
        ) => (
            token,
            previous_id(stored),
            stored.refresh_lifetime,
            stored.identity.clone(),
        ),
        _ => (
            &job.refresh_token,
            job.previous_id.clone(),
            job.refresh_lifetime,
            job.identity.clone(),
        ),
    };
    let asking = Instant::now();
    let previous_id = previous_id.as_ref().map(|(token, claims)| (token, claims));
    let refreshed = match &job.narrow_scope {
        None => provider
            .refresh(refresh_token, previous_id, http, now)
            .await
            .map(|tokens| (tokens, None)),
        Some(scope) => {
            provider
                .refresh_narrowed(refresh_token, previous_id, scope, http, now)
                .await
        }
    };
    took.idp_us = micros_since(asking);
    match refreshed {
        Err(err) => RefreshOutcome::failed(&err, &job.profile),
        Ok((mut tokens, granted_scope)) => {
            let rotated = tokens
                .refresh_token
                .as_ref()
                .is_some_and(|token| token.expose() != refresh_token.expose());
            tokens.refresh_lifetime =
                RefreshLifetime::after_refresh(tokens.refresh_lifetime, previous_lifetime, rotated);
            if tokens.id_token.is_none() && tokens.id_claims.is_none() {
                tokens.id_claims = identity;
            }
            let writing = Instant::now();
            let saved = match stored_login(&job.settings, &tokens, now) {
                None => Ok(()),
                Some(login) => {
                    let (logins, profile) = (logins.clone(), job.profile.clone());
                    tokio::task::spawn_blocking(move || save_retrying(&logins, &profile, &login))
                        .await
                        .unwrap_or_else(|err| Err(KeychainError::Other(err.to_string())))
                        .map_err(|err| errors::keychain(&err))
                }
            };
            took.keychain_write_us = micros_since(writing);
            RefreshOutcome::Refreshed {
                tokens,
                saved,
                took,
                granted_scope,
            }
        }
    }
}

/// A keychain session opened ahead of time (by a spare worker) may have gone stale since; one
/// more try opens a fresh one.
fn save_retrying(
    logins: &LoginStore,
    profile: &str,
    login: &StoredLogin,
) -> Result<(), KeychainError> {
    match logins.save(profile, login) {
        Err(KeychainError::Unavailable(_)) => logins.save(profile, login),
        other => other,
    }
}

/// Agent side: runs `job` in a worker process and waits for its answer.
pub(crate) async fn run_in_worker(
    workers: &Arc<WorkerPool>,
    job: RefreshJob,
    provider: &Provider,
) -> RefreshOutcome {
    let unknown = |message: String| RefreshOutcome::Unknown {
        error: errors::reply(
            ErrorKind::Internal,
            message,
            Some("retry; the agent reads the keychain again first".into()),
        ),
    };
    let request = match serde_json::to_vec(&WorkerRequest {
        job,
        provider: provider.export(),
        client_secret: provider.client_secret().cloned(),
    }) {
        Ok(request) => request,
        Err(err) => return unknown(format!("cannot encode the refresh request: {err}")),
    };
    let mut child = match workers.take() {
        Ok(child) => child,
        Err(err) => {
            return unknown(format!(
                "cannot start the refresh worker {}: {err}",
                workers.program().display()
            ));
        }
    };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return unknown("the refresh worker was started without its stdin and stdout pipes".into());
    };
    let exchange = async {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        stdin.write_all(&request).await?;
        drop(stdin);
        // One line, not everything up to end-of-file: the worker's exit (closing its keychain
        // session) takes about as long as the refresh itself, and no caller should wait for it.
        // A worker that dies first gives end-of-file and a partial line, which fails to parse.
        let mut answer = Vec::new();
        tokio::io::BufReader::new(stdout)
            .read_until(b'\n', &mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(WORKER_TIMEOUT, exchange).await;
    // The worker finishes on its own (also after a timeout: a refresh is never cut short).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    // Not during the refresh, nor while the callers that waited for it are being answered:
    // a starting spare (an exec and a keychain session with a Diffie-Hellman exchange)
    // would compete with both for the CPU.
    let workers_later = workers.clone();
    tokio::spawn(async move {
        tokio::time::sleep(SPARE_DELAY).await;
        workers_later.keep_spare();
    });
    match answer {
        Ok(Ok(answer)) => serde_json::from_slice(&answer).unwrap_or_else(|err| {
            unknown(format!("the refresh worker gave no usable answer: {err}"))
        }),
        Ok(Err(err)) => unknown(format!("lost the refresh worker: {err}")),
        Err(_) => unknown(format!(
            "the refresh worker did not finish within {WORKER_TIMEOUT:?}"
        )),
    }
}

fn open_lock(lock_dir: &Path, profile: &str) -> std::io::Result<File> {
    paths::ensure_private_dir(lock_dir)?;
    paths::private_open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir.join(format!("refresh-{profile}.lock")))
}

/// Waits until no refresh worker holds the profile's lock (one left behind by an agent that
/// died mid-refresh), so the keychain read that follows sees its result.
pub(crate) fn wait_for_workers(lock_dir: &Path, profile: &str) {
    let Ok(file) = open_lock(lock_dir, profile) else {
        return;
    };
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock_shared() {
            Ok(()) => return,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return,
        }
    }
}

/// Entry point of `stagepass-agent --refresh-worker`: one refresh from stdin, the outcome as
/// one line of JSON on stdout.
pub fn worker_main() -> ExitCode {
    // It holds the refresh token: as much as the agent, it must not be dumped or traced.
    if let Err(err) = crate::process::harden() {
        eprintln!("refresh worker: cannot protect its memory ({err}); nothing done");
        return ExitCode::FAILURE;
    }
    // Everything that does not need the job comes first: a spare worker (see
    // `worker_pool`) gets it done before the agent needs it.
    let keychain = OsKeychain::new();
    let _ = keychain.open();
    let logins = LoginStore::new(Arc::new(keychain));
    let http = HttpClient::new(HttpLimits::default());
    let Ok(input) = crate::child_request::read_stdin() else {
        return ExitCode::FAILURE;
    };
    if input.is_empty() {
        // A spare the agent no longer needs.
        return ExitCode::SUCCESS;
    }
    // A truncated request (the agent died while writing it) parses as nothing: no refresh.
    let Ok(WorkerRequest {
        job,
        provider,
        client_secret,
    }) = serde_json::from_slice::<WorkerRequest>(&input)
    else {
        eprintln!("refresh worker: incomplete request; nothing done");
        return ExitCode::FAILURE;
    };
    let Ok(lock) = open_lock(&job.lock_dir, &job.profile) else {
        return ExitCode::FAILURE;
    };
    if lock.lock().is_err() {
        return ExitCode::FAILURE;
    }
    let outcome = match run_job(job, provider, client_secret, http, &logins) {
        Ok(outcome) => outcome,
        Err(message) => RefreshOutcome::Unknown {
            error: errors::reply(ErrorKind::Internal, message, None),
        },
    };
    let mut stdout = std::io::stdout().lock();
    // The agent may be gone; the keychain already holds the result either way.
    let _ = serde_json::to_writer(&mut stdout, &outcome)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    drop(lock);
    ExitCode::SUCCESS
}

fn run_job(
    job: RefreshJob,
    provider: serde_json::Value,
    client_secret: Option<ClientSecret>,
    http: Result<HttpClient, HttpError>,
    logins: &LoginStore,
) -> Result<RefreshOutcome, String> {
    let mut provider = Provider::import(provider, &job.settings).map_err(|err| err.to_string())?;
    if let Some(secret) = client_secret {
        provider = provider
            .with_client_secret(secret)
            .map_err(|err| err.to_string())?;
    }
    let http = http.map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    Ok(runtime.block_on(refresh_and_save(
        &job,
        &provider,
        &http,
        logins,
        SystemTime::now(),
    )))
}
