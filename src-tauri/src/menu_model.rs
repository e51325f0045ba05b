//! The tray menu as plain data, built from the agent's state: what the user sees and what
//! each entry does. Kept free of Tauri types so it is tested as a pure function; `tray.rs`
//! turns it into a native menu.

use stagepass_proto::{ProfileStatus, SessionState};

use crate::clock::WallClock;
use crate::state::{AgentLink, TrayState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuEntry {
    /// Text the user reads but cannot click (a profile's name and state).
    Info(String),
    Action {
        action: MenuAction,
        label: String,
    },
    Separator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    SignIn(String),
    SignOut(String),
    CopyToken(String),
    OpenBackstage,
    Status,
    RecentAccess,
    Settings,
    Quit,
}

impl MenuAction {
    /// The native menu item's id; profile names cannot contain `:` (the config refuses them).
    pub fn id(&self) -> String {
        match self {
            MenuAction::SignIn(profile) => format!("sign-in:{profile}"),
            MenuAction::SignOut(profile) => format!("sign-out:{profile}"),
            MenuAction::CopyToken(profile) => format!("copy-token:{profile}"),
            MenuAction::OpenBackstage => "open-backstage".into(),
            MenuAction::Status => "status".into(),
            MenuAction::RecentAccess => "recent-access".into(),
            MenuAction::Settings => "settings".into(),
            MenuAction::Quit => "quit".into(),
        }
    }

    pub fn from_id(id: &str) -> Option<MenuAction> {
        let profile = |name: &str| name.to_string();
        Some(match id.split_once(':') {
            Some(("sign-in", name)) => MenuAction::SignIn(profile(name)),
            Some(("sign-out", name)) => MenuAction::SignOut(profile(name)),
            Some(("copy-token", name)) => MenuAction::CopyToken(profile(name)),
            Some(_) => return None,
            None => match id {
                "open-backstage" => MenuAction::OpenBackstage,
                "status" => MenuAction::Status,
                "recent-access" => MenuAction::RecentAccess,
                "settings" => MenuAction::Settings,
                "quit" => MenuAction::Quit,
                _ => return None,
            },
        })
    }
}

/// Long addresses and messages are cut so the menu stays a reasonable width.
const WHO_MAX_CHARS: usize = 32;
const MESSAGE_MAX_CHARS: usize = 60;

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars - 1).collect();
    format!("{kept}…")
}

/// One line saying where a profile stands: "signed in as alice@example.com · expires 14:32".
pub fn profile_line(state: &TrayState, profile: &ProfileStatus, clock: &WallClock) -> String {
    let who = profile
        .user
        .as_deref()
        .or(profile.email.as_deref())
        .or(profile.subject.as_deref());
    match profile.state {
        SessionState::SignedIn => {
            let who = who.map(|who| format!(" as {}", shorten(who, WHO_MAX_CHARS)));
            let expiry = match profile.access_token_expires_at {
                Some(at) => format!(" · expires {}", clock.time_of(at)),
                None if profile.never_expires => " · does not expire".into(),
                None => String::new(),
            };
            let failing = if state.refresh_failing.contains(&profile.name) {
                " · refresh failing"
            } else {
                ""
            };
            format!("signed in{}{expiry}{failing}", who.unwrap_or_default())
        }
        SessionState::NeedsSignIn => "needs sign-in".into(),
        SessionState::SignedOut => match &profile.reason {
            Some(_) => "state unknown (see Status…)".into(),
            None => "signed out".into(),
        },
    }
}

pub fn build_menu(
    state: &TrayState,
    backstage_configured: bool,
    clock: &WallClock,
) -> Vec<MenuEntry> {
    let mut menu = Vec::new();
    let action = |action: MenuAction, label: &str| MenuEntry::Action {
        action,
        label: label.to_string(),
    };
    match &state.link {
        AgentLink::Connecting => menu.push(MenuEntry::Info("Connecting to the agent…".into())),
        AgentLink::Unreachable { message } => {
            menu.push(MenuEntry::Info("The agent cannot be reached".into()));
            menu.push(MenuEntry::Info(shorten(message, MESSAGE_MAX_CHARS)));
        }
        AgentLink::Connected { .. } if state.profiles.is_empty() => {
            menu.push(MenuEntry::Info("No profiles yet".into()));
            menu.push(action(MenuAction::Settings, "Add a profile…"));
        }
        AgentLink::Connected { .. } => {}
    }
    for profile in &state.profiles {
        let name = &profile.name;
        menu.push(MenuEntry::Info(format!(
            "{name} — {}",
            profile_line(state, profile, clock)
        )));
        match profile.state {
            SessionState::SignedIn => {
                menu.push(action(
                    MenuAction::CopyToken(name.clone()),
                    "Copy access token",
                ));
                if state.needs_attention(profile) {
                    menu.push(action(MenuAction::SignIn(name.clone()), "Sign in again…"));
                }
                menu.push(action(MenuAction::SignOut(name.clone()), "Sign out"));
            }
            SessionState::NeedsSignIn | SessionState::SignedOut => {
                menu.push(action(MenuAction::SignIn(name.clone()), "Sign in…"));
            }
        }
        menu.push(MenuEntry::Separator);
    }
    if !matches!(menu.last(), Some(MenuEntry::Separator) | None) {
        menu.push(MenuEntry::Separator);
    }
    if backstage_configured {
        menu.push(action(MenuAction::OpenBackstage, "Open Backstage"));
    }
    menu.push(action(MenuAction::Status, "Status…"));
    menu.push(action(MenuAction::RecentAccess, "Recent access…"));
    menu.push(action(MenuAction::Settings, "Settings…"));
    menu.push(MenuEntry::Separator);
    menu.push(action(MenuAction::Quit, "Quit stagepass"));
    menu
}

/// The icon's tooltip: one line per profile.
pub fn tooltip(state: &TrayState, clock: &WallClock) -> String {
    let mut lines = vec!["stagepass".to_string()];
    match &state.link {
        AgentLink::Unreachable { .. } => lines.push("agent unreachable".into()),
        AgentLink::Connecting => lines.push("connecting…".into()),
        AgentLink::Connected { .. } => lines.extend(
            state
                .profiles
                .iter()
                .map(|p| format!("{}: {}", p.name, profile_line(state, p, clock))),
        ),
    }
    lines.join("\n")
}

#[cfg(test)]
#[path = "menu_model_tests.rs"]
mod tests;
