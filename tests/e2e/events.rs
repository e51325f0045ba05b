//! Clients can subscribe to state changes (the tray lives on this): `status --watch`.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use support::{Idp, Sandbox};

#[test]
fn subscribers_see_sign_in_refresh_and_sign_out() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "3")]);
    let sandbox = Sandbox::new("e2e-events", &idp.issuer);
    let mut watcher = sandbox
        .command(&["status", "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, events) = mpsc::channel::<serde_json::Value>();
    let lines = BufReader::new(watcher.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            let _ = sender.send(serde_json::from_str(&line).unwrap());
        }
    });
    let next = |what: &str| {
        events
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no {what} event"))
    };

    let snapshot = next("snapshot");
    assert_eq!(snapshot["event"], "snapshot");
    assert_eq!(snapshot["profile"]["state"], "signed_out");

    sandbox.login_browser();
    let signed_in = next("signed_in");
    assert_eq!(signed_in["event"], "signed_in");
    assert_eq!(signed_in["profile"]["email"], "alice@example.com");

    // The agent's own refresh ahead of expiry is announced too.
    let refreshed = next("refreshed");
    assert_eq!(refreshed["event"], "refreshed");
    assert_eq!(refreshed["profile"]["state"], "signed_in");

    sandbox.run(&["logout"]).assert_ok();
    let signed_out = loop {
        let event = next("signed_out");
        if event["event"] != "refreshed" {
            break event;
        }
    };
    assert_eq!(signed_out["event"], "signed_out");
    assert_eq!(signed_out["profile"]["state"], "signed_out");
    let _ = watcher.kill();
    let _ = watcher.wait();
}
