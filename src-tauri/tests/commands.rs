//! Every Tauri command, invoked through Tauri's mock runtime the way the windows call them,
//! against a fake agent and a fake desktop.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    reason = "a test binary: a failed unwrap, expect or panic is a failed test, its message says why"
)]

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stagepass_client::Update;
use stagepass_proto::{LoginProgress, StatusReport};
use stagepass_tray::app::AppCore;
use support::{EXPIRES_AT, Harness, harness, signed_in};
use tauri::Manager;

const CONFIG: &str = r#"# mine: keep me
[profiles.corp]
issuer = "https://idp.example.com"
client_id = "stagepass"   # registered by IT
scopes = ["openid", "email", "offline_access"]
"#;

fn setup() -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let harness = harness(&dir.path().join("config.toml"), dir.path());
    (dir, harness)
}

/// Polls a sign-in until it reaches `phase`.
fn wait_for_phase(harness: &Harness, profile: &str, phase: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let view = harness
            .invoke("sign_in_view", json!({ "profile": profile }))
            .unwrap();
        if view["phase"]["phase"] == phase {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "still {view} waiting for {phase}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn agent_state_mirrors_the_stream() {
    let (_dir, h) = setup();
    assert_eq!(
        h.invoke("agent_state", json!({})).unwrap()["link"]["link"],
        "connecting"
    );
    h.app
        .state::<AppCore>()
        .state()
        .apply(&Update::Snapshot(StatusReport {
            agent_version: "0.1.0".into(),
            agent_pid: 7,
            config_path: "/c.toml".into(),
            profiles: vec![signed_in("corp")],
            proxy: None,
        }));
    let state = h.invoke("agent_state", json!({})).unwrap();
    assert_eq!(state["link"]["agent_pid"], 7);
    assert_eq!(state["profiles"][0]["email"], "alice@example.com");
}

#[test]
fn copy_token_fills_the_clipboard_and_confirms_profile_and_expiry() {
    let (_dir, h) = setup();
    let done = h
        .invoke("copy_token", json!({ "profile": "corp" }))
        .unwrap();
    assert_eq!(done["profile"], "corp");
    assert_eq!(done["expires_at"], EXPIRES_AT);
    assert_eq!(
        h.desktop.clipboard.lock().unwrap().as_deref(),
        Some("eyJ.access.token")
    );
    let notifications = h.desktop.notifications.lock().unwrap().clone();
    assert_eq!(notifications[0].0, "Copied the corp access token");
    let label = done["expires_label"].as_str().unwrap();
    assert!(
        notifications[0]
            .1
            .contains(&format!("It expires at {label}.")),
        "{notifications:?}"
    );

    let err = h
        .invoke("copy_token", json!({ "profile": "ops" }))
        .unwrap_err();
    assert_eq!(err["message"], "ops needs a sign-in");
    assert_eq!(err["hint"], "run `stagepass login ops`");
    assert_eq!(
        h.desktop.clipboard.lock().unwrap().as_deref(),
        Some("eyJ.access.token")
    );
}

#[test]
fn sign_out_asks_the_agent() {
    let (_dir, h) = setup();
    let report = h.invoke("sign_out", json!({ "profile": "corp" })).unwrap();
    assert_eq!(report["revoked"], true);
    assert_eq!(h.agent.calls.lock().unwrap().as_slice(), ["sign_out corp"]);
}

#[test]
fn device_sign_in_shows_the_code_copies_it_and_cancels() {
    let (_dir, h) = setup();
    *h.agent.sign_in_steps.lock().unwrap() = Some(vec![LoginProgress::DeviceCode {
        verification_uri: "https://idp.example.com/device".into(),
        verification_uri_complete: Some(
            "https://idp.example.com/device?user_code=WDJB-MJHT".into(),
        ),
        user_code: "WDJB-MJHT".into(),
        expires_at: EXPIRES_AT,
    }]);
    let (release, hold) = mpsc::channel();
    *h.agent.hold.lock().unwrap() = Some(hold);
    let started = h
        .invoke(
            "start_sign_in",
            json!({ "profile": "corp", "flow": "device" }),
        )
        .unwrap();
    assert_eq!(started["phase"]["phase"], "starting");
    let view = wait_for_phase(&h, "corp", "device");
    assert_eq!(view["phase"]["user_code"], "WDJB-MJHT");
    assert!(view["phase"]["qr_svg"].as_str().unwrap().contains("<svg"));
    // A second start while one is under way joins it.
    let again = h
        .invoke("start_sign_in", json!({ "profile": "corp" }))
        .unwrap();
    assert_eq!(again["phase"]["phase"], "device");
    assert_eq!(h.agent.calls.lock().unwrap().len(), 1);

    h.invoke("copy_user_code", json!({ "profile": "corp" }))
        .unwrap();
    assert_eq!(
        h.desktop.clipboard.lock().unwrap().as_deref(),
        Some("WDJB-MJHT")
    );
    let cancelled = h
        .invoke("cancel_sign_in", json!({ "profile": "corp" }))
        .unwrap();
    assert_eq!(cancelled["phase"]["phase"], "cancelled");
    release.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wait_for_phase(&h, "corp", "cancelled")["profile"], "corp");
    assert!(
        h.invoke("copy_user_code", json!({ "profile": "corp" }))
            .is_err()
    );
}

#[test]
fn browser_sign_in_opens_and_reopens_the_page_then_succeeds() {
    let (_dir, h) = setup();
    let url = "http://127.0.0.1:9/authorize?state=s";
    *h.agent.sign_in_steps.lock().unwrap() =
        Some(vec![LoginProgress::OpenBrowser { url: url.into() }]);
    let (release, hold) = mpsc::channel();
    *h.agent.hold.lock().unwrap() = Some(hold);
    h.invoke("open_sign_in", json!({ "profile": "corp" }))
        .unwrap();
    assert!(
        h.app.get_webview_window("sign-in").is_some(),
        "the sign-in window opened"
    );
    wait_for_phase(&h, "corp", "browser");
    h.invoke("reopen_browser", json!({ "profile": "corp" }))
        .unwrap();
    assert_eq!(h.desktop.opened.lock().unwrap().as_slice(), [url, url]);
    release.send(()).unwrap();
    let done = wait_for_phase(&h, "corp", "signed_in");
    assert_eq!(done["phase"]["who"], "alice@example.com");
    assert!(
        h.invoke("reopen_browser", json!({ "profile": "corp" }))
            .is_err()
    );
}

#[test]
fn failed_sign_in_says_why() {
    let (_dir, h) = setup();
    h.invoke("start_sign_in", json!({ "profile": "corp" }))
        .unwrap();
    let view = wait_for_phase(&h, "corp", "failed");
    assert_eq!(
        view["phase"]["error"]["message"],
        "the user denied the sign-in"
    );
    assert_eq!(
        h.invoke("sign_in_view", json!({ "profile": "none" }))
            .unwrap(),
        Value::Null
    );
}

#[test]
fn profile_details_and_recent_access() {
    let (dir, h) = setup();
    let details = h
        .invoke("profile_details", json!({ "profile": "corp" }))
        .unwrap();
    assert_eq!(details["groups"], json!(["dev"]));
    assert_eq!(details["audience"], json!(["backstage"]));
    assert_eq!(details["access_token"]["issued_at"], EXPIRES_AT - 300);

    let line = r#"{"time":"2026-11-22T10:00:00Z","event":"token","consumer":"git","pid":4242,"exe":"/usr/bin/git","profile":"corp","audience":"backstage","outcome":"ok"}"#;
    std::fs::write(dir.path().join("audit.jsonl"), format!("{line}\n")).unwrap();
    let entries = h
        .invoke("recent_access", json!({ "profile": null }))
        .unwrap();
    assert_eq!(entries[0]["program"], "/usr/bin/git");
    assert_eq!(entries[0]["pid"], 4242);
    assert_eq!(
        h.invoke("recent_access", json!({ "profile": "home" }))
            .unwrap(),
        json!([])
    );
}

#[test]
fn settings_edit_the_config_and_keep_comments() {
    let (dir, h) = setup();
    let page = h.invoke("settings", json!({})).unwrap();
    assert_eq!(page["profiles"][0]["name"], "corp");
    assert_eq!(page["start_at_login"], false);

    let form = json!({ "name": "home", "issuer": "https://login.example.org", "client_id": "app",
        "scopes": ["openid"], "audience": null, "flow": "device", "groups_claim": "roles" });
    let page = h
        .invoke("save_profile", json!({ "original": null, "form": form }))
        .unwrap();
    assert_eq!(page["profiles"].as_array().unwrap().len(), 2);
    let hosts = json!([{ "url": "https://git.example.com/", "profile": "home", "auth": "bearer", "username": null }]);
    let page = h
        .invoke("save_git_hosts", json!({ "hosts": hosts }))
        .unwrap();
    assert_eq!(page["git_hosts"][0]["auth"], "bearer");
    let err = h
        .invoke("remove_profile", json!({ "name": "home" }))
        .unwrap_err();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("[[git]] https://git.example.com/"),
        "{err}"
    );
    h.invoke("save_git_hosts", json!({ "hosts": [] })).unwrap();
    h.invoke("remove_profile", json!({ "name": "home" }))
        .unwrap();

    let preferences = json!({ "notifications": false, "backstage_url": "https://backstage.example.com",
        "quit_stops_agent": true, "start_at_login": true });
    let page = h
        .invoke("save_preferences", json!({ "preferences": preferences }))
        .unwrap();
    assert_eq!(page["desktop"]["notifications"], false);
    assert_eq!(page["start_at_login"], true);
    assert!(*h.desktop.autostart.lock().unwrap());

    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(text.starts_with("# mine: keep me"), "{text}");
    assert!(
        text.contains("client_id = \"stagepass\"   # registered by IT"),
        "{text}"
    );
    assert!(!text.contains("[profiles.home]"), "{text}");

    let bad = json!({ "name": "x", "issuer": "http://idp.example.org", "client_id": "app",
        "scopes": ["openid"], "audience": null, "flow": "auto", "groups_claim": null });
    let err = h
        .invoke("save_profile", json!({ "original": null, "form": bad }))
        .unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("https"), "{err}");
    assert!(
        !std::fs::read_to_string(dir.path().join("config.toml"))
            .unwrap()
            .contains("profiles.x")
    );
}

#[test]
fn open_window_knows_its_windows() {
    let (_dir, h) = setup();
    h.invoke("open_window", json!({ "name": "settings" }))
        .unwrap();
    assert!(h.app.get_webview_window("settings").is_some());
    let err = h
        .invoke("open_window", json!({ "name": "nope" }))
        .unwrap_err();
    assert_eq!(err["message"], "no window called `nope`");
}

/// "Open Backstage": through the proxy's one-time launch URL when a route serves Backstage as
/// the user, else the configured URL, else a notification that says what to configure.
#[test]
fn open_backstage_prefers_the_proxy_launch_url() {
    let (dir, h) = setup();
    let core = h.app.state::<AppCore>();
    let config = dir.path().join("config.toml");
    assert!(core.open_backstage().is_err(), "nothing to open yet");

    let with_url =
        format!("{CONFIG}\n[desktop]\nbackstage_url = \"https://backstage.example.com\"\n");
    std::fs::write(&config, &with_url).unwrap();
    core.open_backstage().unwrap();

    std::fs::write(
        &config,
        format!(
            "[profiles.portal]\nkind = \"backstage\"\nurl = \"https://backstage.example.com\"\n\
             {with_url}\n[[route]]\nname = \"backstage\"\npath = \"/backstage\"\n\
             upstream = \"https://backstage.example.com\"\nprofile = \"portal\"\nidentity = \"backstage\"\n"
        ),
    )
    .unwrap();
    core.open_backstage().unwrap();
    assert_eq!(
        h.desktop.opened.lock().unwrap().as_slice(),
        [
            "https://backstage.example.com",
            "http://127.0.0.1:7466/.stagepass/launch/backstage-once"
        ]
    );
    assert_eq!(
        h.agent.calls.lock().unwrap().as_slice(),
        ["proxy_launch backstage"]
    );
}
