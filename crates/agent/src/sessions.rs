//! The agent's state: the config (reloaded when the file changes), discovered providers, and
//! the session service (`crate::session`), which holds every profile's tokens in memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use stagepass_core::config::{Config, Profile};
use stagepass_core::oidc::Provider;
use tokio::sync::Notify;

use crate::audit::AuditLog;
use crate::session::{Session, Sessions};
use crate::{AgentOptions, Dependencies};

/// Discovery documents and keys change rarely; an hour bounds how long a rotated signing
/// key can go unnoticed (a verification failure also drops the entry).
const PROVIDER_TTL: Duration = Duration::from_secs(3600);

pub(crate) struct Agent {
    pub deps: Dependencies,
    pub audit: AuditLog,
    pub options: AgentOptions,
    pub shutdown: Notify,
    config: Mutex<Option<CachedConfig>>,
    providers: tokio::sync::Mutex<HashMap<String, CachedProvider>>,
    /// Every profile's session: the session service owns them.
    pub sessions: Sessions,
    /// Interactive sign-ins under way, one per profile at most; later callers join them.
    pub pending_logins: Mutex<HashMap<String, Arc<crate::handlers::SharedLogin>>>,
    /// The local proxy's sessions, counters and upstream clients.
    pub proxy: crate::proxy::ProxyState,
    /// Remote keys (digests only), loaded from the data dir on first use.
    pub remote: crate::remote::RemoteKeys,
}

struct CachedConfig {
    stamp: FileStamp,
    config: Arc<Config>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

struct CachedProvider {
    profile: Profile,
    provider: Arc<Provider>,
    fetched_at: SystemTime,
}

impl Agent {
    pub(crate) fn new(options: AgentOptions, deps: Dependencies) -> Agent {
        Agent {
            audit: AuditLog::new(&options.data_dir),
            remote: crate::remote::RemoteKeys::new(&options.data_dir),
            deps,
            options,
            shutdown: Notify::new(),
            config: Mutex::new(None),
            providers: tokio::sync::Mutex::new(HashMap::new()),
            sessions: Sessions::default(),
            pending_logins: Mutex::new(HashMap::new()),
            proxy: crate::proxy::ProxyState::default(),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.deps.clock.now()
    }

    /// Appends an audit line stamped with the agent's clock.
    pub(crate) fn record(&self, entry: &impl serde::Serialize) {
        let now = time::OffsetDateTime::from(self.now())
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.audit.record(entry, &now);
    }

    /// The current config, re-read only when the file's mtime or size changed: one `stat`
    /// per request keeps the token path fast and edits take effect without a restart.
    pub(crate) fn config(&self) -> stagepass_core::Result<Arc<Config>> {
        let path = &self.options.config_path;
        let stamp = std::fs::metadata(path).ok().map(|meta| FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        });
        let mut cache = self
            .config
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let (Some(stamp), Some(cached)) = (stamp, cache.as_ref())
            && cached.stamp == stamp
        {
            return Ok(cached.config.clone());
        }
        let config = Arc::new(Config::load(path)?);
        if let Some(stamp) = stamp {
            *cache = Some(CachedConfig {
                stamp,
                config: config.clone(),
            });
        }
        Ok(config)
    }

    pub(crate) fn config_path(&self) -> &PathBuf {
        &self.options.config_path
    }

    /// The session of `name` (see [`crate::session::Sessions::get`]).
    pub(crate) fn session(&self, name: &str, profile: &Profile) -> Arc<Session> {
        self.sessions.get(name, profile)
    }

    /// The discovered provider of a profile, cached for [`PROVIDER_TTL`].
    pub(crate) async fn provider(
        &self,
        name: &str,
        profile: &Profile,
    ) -> stagepass_core::Result<Arc<Provider>> {
        let mut providers = self.providers.lock().await;
        if let Some(cached) = providers.get(name)
            && cached.profile == *profile
            && self.now() < cached.fetched_at + PROVIDER_TTL
        {
            return Ok(cached.provider.clone());
        }
        let discovered = Provider::discover(profile, &self.deps.http).await?;
        let provider =
            Arc::new(crate::client_secret::attach(self, name, profile, discovered).await?);
        providers.insert(
            name.to_string(),
            CachedProvider {
                profile: profile.clone(),
                provider: provider.clone(),
                fetched_at: self.now(),
            },
        );
        Ok(provider)
    }

    /// Drops a cached provider, e.g. after an id_token failed verification with its keys.
    pub(crate) async fn forget_provider(&self, name: &str) {
        self.providers.lock().await.remove(name);
    }
}
