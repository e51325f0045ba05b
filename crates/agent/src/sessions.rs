//! The agent's state: the config (reloaded when the file changes), discovered providers, and
//! the session service (`crate::session`), which holds every profile's tokens in memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use stagepass_core::config::{Config, Profile};
use stagepass_core::oidc::Provider;
use tokio::sync::Notify;

use crate::audit::AuditLog;
use crate::session::{Session, Sessions};
use crate::{AgentOptions, Dependencies};

pub(crate) struct Agent {
    pub deps: Dependencies,
    pub audit: AuditLog,
    pub options: AgentOptions,
    pub shutdown: Notify,
    config: crate::config_watch::ConfigCache,
    providers: crate::providers::Providers,
    /// Every profile's session: the session service owns them.
    pub sessions: Sessions,
    /// Interactive sign-ins under way, one per profile at most; later callers join them.
    pub pending_logins: Mutex<HashMap<String, Arc<crate::handlers::SharedLogin>>>,
    /// The local proxy's sessions, counters and upstream clients.
    pub proxy: crate::proxy::ProxyState,
    /// Delegations and remote keys (digests only), loaded from the data dir on first use.
    pub delegations: crate::delegation::Delegations,
}

impl Agent {
    pub(crate) fn new(options: AgentOptions, deps: Dependencies) -> Agent {
        let config = crate::config_watch::ConfigCache::new(options.config_path.clone());
        Agent {
            audit: AuditLog::new(&options.data_dir),
            delegations: crate::delegation::Delegations::new(&options.data_dir),
            deps,
            options,
            shutdown: Notify::new(),
            config,
            providers: crate::providers::Providers::default(),
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
        self.audit.record(entry, self.now());
    }

    /// The current config, re-read only after the file changed ([`crate::config_watch`]).
    pub(crate) fn config(&self) -> stagepass_core::Result<Arc<Config>> {
        self.config.get()
    }

    pub(crate) fn config_path(&self) -> &PathBuf {
        &self.options.config_path
    }

    /// The session of `name` (see [`crate::session::Sessions::get`]).
    pub(crate) fn session(&self, name: &str, profile: &Profile) -> Arc<Session> {
        self.sessions.get(name, profile)
    }

    /// The discovered provider of a profile ([`crate::providers`]), with its client secret
    /// when it is a confidential client.
    pub(crate) async fn provider(
        &self,
        name: &str,
        profile: &Profile,
    ) -> stagepass_core::Result<Arc<Provider>> {
        let discover = async {
            let discovered = Provider::discover(profile, &self.deps.http).await?;
            crate::client_secret::attach(self, name, profile, discovered).await
        };
        self.providers
            .get(name, profile, || self.now(), discover)
            .await
    }

    /// Drops a cached provider, e.g. after an id_token failed verification with its keys.
    pub(crate) async fn forget_provider(&self, name: &str) {
        self.providers.forget(name);
    }
}
