use stagepass_client::Update;
use stagepass_proto::{EventKind, ProfileStatus, SessionState, StatusEvent, StatusReport};
use time::UtcOffset;

use super::*;
use crate::state::TrayLook;

const NOON: u64 = 1_795_348_800; // 2026-11-22 12:00 UTC

fn clock() -> WallClock {
    WallClock {
        now: NOON,
        offset: UtcOffset::UTC,
    }
}

fn profile(name: &str, state: SessionState, email: Option<&str>) -> ProfileStatus {
    ProfileStatus {
        name: name.into(),
        issuer: "https://idp.example.com".into(),
        state,
        subject: Some("sub-1".into()),
        email: email.map(String::from),
        access_token_expires_at: (state == SessionState::SignedIn)
            .then_some(NOON + 2 * 3600 + 32 * 60),
        reason: None,
        notes: Vec::new(),
        user: None,
        never_expires: false,
    }
}

fn connected(profiles: Vec<ProfileStatus>) -> TrayState {
    let mut state = TrayState::default();
    state.apply(&Update::Snapshot(StatusReport {
        agent_version: "0.1.0".into(),
        agent_pid: 42,
        config_path: "/c.toml".into(),
        profiles,
        proxy: None,
    }));
    state
}

fn labels(menu: &[MenuEntry]) -> Vec<String> {
    menu.iter()
        .map(|entry| match entry {
            MenuEntry::Info(text) => format!("({text})"),
            MenuEntry::Action { label, .. } => label.clone(),
            MenuEntry::Separator => "---".into(),
        })
        .collect()
}

#[test]
fn signed_in_and_signed_out_profiles() {
    let state = connected(vec![
        profile("corp", SessionState::SignedIn, Some("alice@example.com")),
        profile("home", SessionState::SignedOut, None),
    ]);
    let menu = build_menu(&state, true, &clock());
    assert_eq!(
        labels(&menu),
        [
            "(corp — signed in as alice@example.com · expires 14:32)",
            "Copy access token",
            "Sign out",
            "---",
            "(home — signed out)",
            "Sign in…",
            "---",
            "Open Backstage",
            "Status…",
            "Recent access…",
            "Settings…",
            "---",
            "Quit stagepass",
        ]
    );
    assert!(menu.contains(&MenuEntry::Action {
        action: MenuAction::CopyToken("corp".into()),
        label: "Copy access token".into()
    }));
    assert_eq!(state.look(), TrayLook::SignedIn);
}

#[test]
fn needs_sign_in_is_attention() {
    let state = connected(vec![
        profile("corp", SessionState::SignedIn, Some("alice@example.com")),
        profile("ops", SessionState::NeedsSignIn, Some("alice@example.com")),
    ]);
    let menu = labels(&build_menu(&state, false, &clock()));
    assert!(
        menu.contains(&"(ops — needs sign-in)".to_string()),
        "{menu:?}"
    );
    assert!(!menu.contains(&"Open Backstage".to_string()));
    assert_eq!(state.look(), TrayLook::Attention);
}

#[test]
fn a_profile_added_later_takes_its_place_by_name() {
    let mut state = connected(vec![
        profile("alpha", SessionState::SignedOut, None),
        profile("lab", SessionState::SignedOut, None),
    ]);
    for name in ["corp", "zulu"] {
        state.apply(&Update::Event(StatusEvent {
            kind: EventKind::SignedIn,
            profile: profile(name, SessionState::SignedIn, Some("alice@example.com")),
        }));
    }
    let names: Vec<&str> = state.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alpha", "corp", "lab", "zulu"]);
}

#[test]
fn events_update_the_profile_and_refresh_failing_flags_it() {
    let mut state = connected(vec![profile("corp", SessionState::SignedOut, None)]);
    assert_eq!(state.look(), TrayLook::SignedOut);
    let signed_in = profile("corp", SessionState::SignedIn, Some("alice@example.com"));
    let event = |kind| {
        Update::Event(StatusEvent {
            kind,
            profile: signed_in.clone(),
        })
    };
    assert!(state.apply(&event(EventKind::SignedIn)));
    assert_eq!(state.look(), TrayLook::SignedIn);
    assert!(state.apply(&event(EventKind::RefreshFailing)));
    assert_eq!(state.look(), TrayLook::Attention);
    let menu = labels(&build_menu(&state, false, &clock()));
    assert!(menu[0].ends_with("· refresh failing)"), "{menu:?}");
    assert!(menu.contains(&"Sign in again…".to_string()));
    assert!(state.apply(&event(EventKind::Refreshed)));
    assert_eq!(state.look(), TrayLook::SignedIn);
    assert!(
        !state.apply(&event(EventKind::Refreshed)),
        "no change, no rebuild"
    );
}

#[test]
fn unreachable_agent_and_no_profiles() {
    let mut state = TrayState::default();
    assert_eq!(
        labels(&build_menu(&state, false, &clock()))[0],
        "(Connecting to the agent…)"
    );
    state.disconnected("the agent did not start: cannot run stagepass-agent".into());
    assert_eq!(state.look(), TrayLook::Attention);
    let menu = labels(&build_menu(&state, false, &clock()));
    assert_eq!(menu[0], "(The agent cannot be reached)");
    assert!(menu.last().unwrap() == "Quit stagepass");
    let empty = connected(vec![]);
    let menu = labels(&build_menu(&empty, false, &clock()));
    assert_eq!(menu[..2], ["(No profiles yet)", "Add a profile…"]);
}

#[test]
fn long_addresses_are_shortened_and_ids_round_trip() {
    let state = connected(vec![profile(
        "corp",
        SessionState::SignedIn,
        Some("a.very.long.name.indeed@subsidiary.example.com"),
    )]);
    let line = profile_line(&state, &state.profiles[0], &clock());
    assert!(
        line.starts_with("signed in as a.very.long.name.indeed@subsidi… · expires"),
        "{line}"
    );
    for action in [
        MenuAction::SignIn("corp".into()),
        MenuAction::SignOut("a.b-c".into()),
        MenuAction::CopyToken("x".into()),
        MenuAction::OpenBackstage,
        MenuAction::Status,
        MenuAction::RecentAccess,
        MenuAction::Settings,
        MenuAction::Quit,
    ] {
        assert_eq!(MenuAction::from_id(&action.id()), Some(action));
    }
    assert_eq!(MenuAction::from_id("nope:x"), None);
}

#[test]
fn tooltip_lists_profiles() {
    let state = connected(vec![profile(
        "corp",
        SessionState::SignedIn,
        Some("alice@example.com"),
    )]);
    assert_eq!(
        tooltip(&state, &clock()),
        "stagepass\ncorp: signed in as alice@example.com · expires 14:32"
    );
}
