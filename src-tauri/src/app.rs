//! The tray's shared state, managed by Tauri: the agent seam, the desktop seam, the mirror of
//! the agent's state and the sign-ins under way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use stagepass_core::config::Desktop as DesktopPrefs;
use stagepass_core::paths;
use stagepass_core::proxy_config::{Identity, Local};

use crate::agent::{Agent, TrayError};
use crate::desktop::Desktop;
use crate::settings::ConfigEditor;
use crate::sign_in::SignIns;
use crate::state::{AgentLink, TrayState};

pub struct AppCore {
    pub agent: Arc<dyn Agent>,
    pub desktop: Arc<dyn Desktop>,
    pub state: Mutex<TrayState>,
    pub sign_ins: SignIns,
    /// The config to edit when the agent has not said which one it reads.
    pub default_config_path: PathBuf,
    /// Where the audit log lives.
    pub data_dir: PathBuf,
}

impl AppCore {
    pub fn new(agent: Arc<dyn Agent>, desktop: Arc<dyn Desktop>) -> AppCore {
        AppCore {
            agent,
            desktop,
            state: Mutex::default(),
            sign_ins: SignIns::default(),
            default_config_path: paths::config_file(),
            data_dir: paths::data_dir(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, TrayState> {
        // The state is a plain mirror: a panic elsewhere cannot leave it half-updated in a
        // way that matters, so a poisoned lock is still used.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The config file the running agent reads, so the settings edit what takes effect.
    pub fn config_path(&self) -> PathBuf {
        match &self.state().link {
            AgentLink::Connected { config_path, .. } => PathBuf::from(config_path),
            _ => self.default_config_path.clone(),
        }
    }

    pub fn config(&self) -> Result<ConfigEditor, TrayError> {
        ConfigEditor::open(&self.config_path())
    }

    /// The local proxy's route that serves Backstage as the user (`identity = "backstage"`),
    /// a host route first: path routes share one browser origin with every other path route.
    pub fn backstage_route(&self) -> Option<String> {
        let config = self.config().and_then(|editor| editor.parsed()).ok()?;
        config
            .routes
            .into_iter()
            .filter(|route| route.identity == Identity::Backstage)
            .min_by_key(|route| matches!(route.local, Local::Path(_)))
            .map(|route| route.name)
    }

    /// Opens Backstage in the browser: through the local proxy's one-time launch URL when a
    /// route serves it (the browser is then the signed-in user with no sign-in of its own),
    /// else the configured `[desktop] backstage_url`.
    pub fn open_backstage(&self) -> Result<(), TrayError> {
        if let Some(route) = self.backstage_route() {
            let launch = self.agent.proxy_launch(&route)?;
            return self.desktop.open_url(launch.url.expose());
        }
        match self.preferences().backstage_url {
            Some(url) => self.desktop.open_url(&url),
            None => Err(TrayError {
                message: "no Backstage to open".into(),
                hint: Some(
                    "add a [[route]] with identity = \"backstage\", or set the Backstage URL in Settings"
                        .into(),
                ),
            }),
        }
    }

    /// The tray's preferences; defaults when the config cannot be read (the menu still
    /// works, and Settings shows the error).
    pub fn preferences(&self) -> DesktopPrefs {
        self.config()
            .and_then(|editor| editor.parsed())
            .map(|config| config.desktop)
            .unwrap_or_default()
    }
}
