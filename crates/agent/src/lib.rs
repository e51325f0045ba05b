//! The stagepass agent: the one process that holds tokens in memory and touches the keychain.
//!
//! Clients (CLI, credential helpers, tray) talk to it over a Unix socket in a private runtime
//! directory, with framed and typed messages (`stagepass-proto`).

mod accept;
mod ancestry;
mod audit;
mod child_request;
mod client_secret;
mod config_watch;
mod conn;
mod credentials;
mod delegation;
#[cfg(unix)]
mod delivery;
mod doctor_probe;
mod errors;
mod handlers;
mod instance;
mod io_thread;
mod log;
mod loopback;
pub mod notify;
// Only the freedesktop notifier asks (actions over D-Bus); elsewhere a question is listed by
// `delegate pending` alone, and the notification's wording goes unused.
#[cfg_attr(
    not(all(feature = "desktop-notifications", unix, not(target_os = "macos"))),
    allow(dead_code)
)]
mod notify_ask;
mod process;
mod providers;
mod proxy;
mod refresh_worker;
mod remote;
mod scheduler;
mod server;
mod session;
mod sessions;
mod signals;
mod sync;
mod transport;
mod worker_pool;

use std::path::PathBuf;
use std::sync::Arc;

use stagepass_core::clock::{Clock, SystemClock};
use stagepass_core::http::{HttpClient, HttpLimits};
use stagepass_core::refresh::{Jitter, RandomJitter};
use stagepass_core::store::{LoginStore, OsKeychain, SecretStore};

pub use doctor_probe::{DOCTOR_PROBE_FLAG, ProbeRequest, doctor_probe_main};
/// The kind and hint of a core error, as the agent answers it: the CLI reports the core errors
/// it meets itself (reading the config) with the same words.
pub use errors::from_core as answer_for;
pub use instance::AlreadyRunning;
pub use log::BoundedLog;
pub use process::{harden, leave_working_directory};
pub use refresh_worker::{WORKER_FLAG, worker_main};

/// Where the agent lives and what it serves.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub runtime_dir: PathBuf,
    pub config_path: PathBuf,
    /// Where the audit log lives.
    pub data_dir: PathBuf,
    /// Desktop notifications on sign-in, sign-in needed and failing refreshes.
    pub notifications: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentStartError {
    #[error(transparent)]
    AlreadyRunning(#[from] AlreadyRunning),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the agent until it is told to stop (request, SIGTERM/SIGINT, or its socket removed).
pub fn run(options: AgentOptions) -> Result<(), AgentStartError> {
    // One thread serves every client: requests are microseconds of work, so cross-thread
    // wake-ups would cost more than they save. Keychain calls go to the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| AgentStartError::Io {
            context: "cannot start the async runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let http = HttpClient::new(HttpLimits::default()).map_err(|err| AgentStartError::Io {
            context: "cannot build the HTTP client".into(),
            source: std::io::Error::other(err.to_string()),
        })?;
        let keychain: Arc<dyn SecretStore> = Arc::new(OsKeychain::new());
        let notifier: Arc<dyn notify::Notifier> = if options.notifications {
            Arc::new(notify::ConfigGated {
                inner: Arc::new(notify::DesktopNotifier),
                config_path: options.config_path.clone(),
            })
        } else {
            Arc::new(notify::Silent)
        };
        let deps = Dependencies {
            http,
            logins: LoginStore::new(keychain),
            clock: Arc::new(SystemClock),
            jitter: Arc::new(RandomJitter::default()),
            notifier,
            refresh_worker: std::env::current_exe()
                .ok()
                .map(|program| Arc::new(worker_pool::WorkerPool::new(program))),
        };
        server::serve(options, deps).await
    })
}

/// What the agent needs from the outside world, injected so tests can swap each part.
#[derive(Clone)]
pub(crate) struct Dependencies {
    pub http: HttpClient,
    pub logins: LoginStore,
    pub clock: Arc<dyn Clock>,
    /// Spreads refreshes and retries; fixed in tests so schedules are exact.
    pub jitter: Arc<dyn Jitter>,
    pub notifier: Arc<dyn notify::Notifier>,
    /// The program that runs refreshes out of process (this agent's own binary); `None` runs
    /// them in process, for tests with an in-memory keychain.
    pub refresh_worker: Option<Arc<worker_pool::WorkerPool>>,
}
