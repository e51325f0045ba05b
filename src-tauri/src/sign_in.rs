//! Sign-ins started from the tray: one per profile at a time, run by the agent, mirrored
//! here so the sign-in window can show (and reopen, and cancel) what is under way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use stagepass_proto::{Flow, LoginProgress};

use crate::agent::{Agent, CancelSlot, TrayError};
use crate::qr;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SignInPhase {
    Starting,
    /// The agent's sign-in page was opened in the browser.
    Browser {
        url: String,
    },
    Device {
        verification_uri: String,
        verification_uri_complete: Option<String>,
        user_code: String,
        /// Unix seconds.
        expires_at: u64,
        /// An SVG QR code of the complete verification URI (or the plain one).
        qr_svg: String,
    },
    /// Another program's sign-in for this profile is under way; this one waits for it.
    Joined {
        started_by_pid: Option<i32>,
    },
    SignedIn {
        who: Option<String>,
    },
    Failed {
        error: TrayError,
    },
    Cancelled,
}

impl SignInPhase {
    pub fn finished(&self) -> bool {
        matches!(
            self,
            SignInPhase::SignedIn { .. } | SignInPhase::Failed { .. } | SignInPhase::Cancelled
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignInView {
    pub profile: String,
    pub phase: SignInPhase,
    /// Seconds since the sign-in started, from the agent's heartbeats.
    pub elapsed_secs: u64,
}

struct Running {
    view: SignInView,
    cancel: CancelSlot,
}

/// Called with every change of a sign-in (to emit it to the window).
pub type OnChange = Arc<dyn Fn(&SignInView) + Send + Sync>;

#[derive(Default)]
pub struct SignIns {
    by_profile: Arc<Mutex<HashMap<String, Running>>>,
}

impl SignIns {
    /// Starts a sign-in unless one for `profile` is under way. Returns immediately; progress
    /// goes to `on_change` and `open_url` (for the browser flow).
    pub fn start(
        &self,
        agent: Arc<dyn Agent>,
        profile: &str,
        flow: Option<Flow>,
        open_url: Arc<dyn Fn(&str) + Send + Sync>,
        on_change: OnChange,
    ) -> SignInView {
        let mut all = lock(&self.by_profile);
        if let Some(running) = all.get(profile)
            && !running.view.phase.finished()
        {
            return running.view.clone();
        }
        let view = SignInView {
            profile: profile.to_string(),
            phase: SignInPhase::Starting,
            elapsed_secs: 0,
        };
        let cancel = CancelSlot::default();
        all.insert(
            profile.to_string(),
            Running {
                view: view.clone(),
                cancel: cancel.clone(),
            },
        );
        drop(all);
        let by_profile = self.by_profile.clone();
        let name = profile.to_string();
        std::thread::spawn(move || {
            let update = |change: &dyn Fn(&mut SignInView)| {
                let mut all = lock(&by_profile);
                if let Some(running) = all.get_mut(&name) {
                    change(&mut running.view);
                    on_change(&running.view);
                }
            };
            let result = agent.sign_in(&name, flow, &cancel, &mut |step| {
                if let LoginProgress::OpenBrowser { url } = step {
                    open_url(url);
                }
                update(&|view| apply_step(view, step));
            });
            update(&|view| {
                if view.phase == SignInPhase::Cancelled {
                    return;
                }
                view.phase = match &result {
                    Ok(status) => SignInPhase::SignedIn {
                        who: status
                            .user
                            .clone()
                            .or(status.email.clone())
                            .or(status.subject.clone()),
                    },
                    Err(error) => SignInPhase::Failed {
                        error: error.clone(),
                    },
                };
            });
        });
        view
    }

    pub fn view(&self, profile: &str) -> Option<SignInView> {
        lock(&self.by_profile)
            .get(profile)
            .map(|running| running.view.clone())
    }

    /// Cancels the sign-in by closing its connection: the agent stops waiting for the IdP.
    pub fn cancel(&self, profile: &str) -> Option<SignInView> {
        let mut all = lock(&self.by_profile);
        let running = all.get_mut(profile)?;
        if !running.view.phase.finished() {
            running.view.phase = SignInPhase::Cancelled;
            if let Some(closer) = lock(&running.cancel).take() {
                closer.close();
            }
        }
        Some(running.view.clone())
    }
}

fn apply_step(view: &mut SignInView, step: &LoginProgress) {
    match step {
        LoginProgress::OpenBrowser { url } => {
            view.phase = SignInPhase::Browser { url: url.clone() }
        }
        LoginProgress::DeviceCode {
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_at,
        } => {
            let target = verification_uri_complete
                .as_ref()
                .unwrap_or(verification_uri);
            view.phase = SignInPhase::Device {
                verification_uri: verification_uri.clone(),
                verification_uri_complete: verification_uri_complete.clone(),
                user_code: user_code.clone(),
                expires_at: *expires_at,
                qr_svg: qr::svg(target).unwrap_or_default(),
            }
        }
        LoginProgress::Joined { started_by_pid } => {
            view.phase = SignInPhase::Joined {
                started_by_pid: *started_by_pid,
            }
        }
        LoginProgress::Waiting { elapsed_secs } => view.elapsed_secs = *elapsed_secs,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicked sign-in thread must not take the tray down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
