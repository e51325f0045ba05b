//! What the tray knows about the agent: the last status snapshot, updated by the events of
//! the subscribe stream. A mirror of the agent's state, never a source of its own.

use std::collections::BTreeSet;

use serde::Serialize;
use stagepass_client::Update;
use stagepass_proto::{EventKind, ProfileStatus, SessionState};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "link", rename_all = "snake_case")]
pub enum AgentLink {
    #[default]
    Connecting,
    Connected {
        agent_version: String,
        agent_pid: u32,
        config_path: String,
    },
    /// The agent could not be reached or started; the watcher keeps retrying.
    Unreachable { message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrayState {
    pub link: AgentLink,
    pub profiles: Vec<ProfileStatus>,
    /// Profiles whose last refresh failed while their tokens still work (cleared by the next
    /// refresh, sign-in or sign-out).
    pub refresh_failing: BTreeSet<String>,
}

/// The three faces of the tray icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayLook {
    SignedOut,
    SignedIn,
    /// A sign-in is needed, a refresh is failing, or the agent cannot be reached.
    Attention,
}

impl TrayState {
    /// Folds one update of the subscribe stream in. Returns whether anything changed.
    pub fn apply(&mut self, update: &Update) -> bool {
        let before = self.clone();
        match update {
            Update::Snapshot(report) => {
                self.link = AgentLink::Connected {
                    agent_version: report.agent_version.clone(),
                    agent_pid: report.agent_pid,
                    config_path: report.config_path.clone(),
                };
                self.profiles = report.profiles.clone();
                let names: BTreeSet<_> = self.profiles.iter().map(|p| p.name.clone()).collect();
                self.refresh_failing.retain(|name| names.contains(name));
            }
            Update::Event(event) => {
                let name = &event.profile.name;
                match self.profiles.iter_mut().find(|p| &p.name == name) {
                    Some(profile) => *profile = event.profile.clone(),
                    None => {
                        // A profile added since the last report: keep the agent's order (by
                        // name), so the menu and the status window do not reshuffle.
                        let at = self.profiles.partition_point(|p| p.name < *name);
                        self.profiles.insert(at, event.profile.clone());
                    }
                }
                if event.kind == EventKind::RefreshFailing {
                    self.refresh_failing.insert(name.clone());
                } else {
                    self.refresh_failing.remove(name);
                }
            }
        }
        *self != before
    }

    pub fn disconnected(&mut self, message: String) {
        self.link = AgentLink::Unreachable { message };
    }

    pub fn profile(&self, name: &str) -> Option<&ProfileStatus> {
        self.profiles.iter().find(|p| p.name == name)
    }

    pub fn needs_attention(&self, profile: &ProfileStatus) -> bool {
        profile.state == SessionState::NeedsSignIn || self.refresh_failing.contains(&profile.name)
    }

    pub fn look(&self) -> TrayLook {
        if matches!(self.link, AgentLink::Unreachable { .. })
            || self.profiles.iter().any(|p| self.needs_attention(p))
        {
            TrayLook::Attention
        } else if self
            .profiles
            .iter()
            .any(|p| p.state == SessionState::SignedIn)
        {
            TrayLook::SignedIn
        } else {
            TrayLook::SignedOut
        }
    }
}
