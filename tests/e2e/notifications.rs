//! The agent speaks through the desktop's notification service on sign-in and when a sign-in
//! is needed, and stays quiet otherwise. Captured with dbus-monitor on the private session
//! bus the tests run in.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Idp, Sandbox, wait_until};

struct Monitor {
    child: std::process::Child,
    seen: Arc<Mutex<String>>,
}

impl Monitor {
    fn start() -> Monitor {
        let mut child = Command::new("dbus-monitor")
            .args([
                "--session",
                "interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor (dbus-bin) is installed");
        let seen = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stdout.take().unwrap());
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let mut seen = sink.lock().unwrap();
                seen.push_str(&line);
                seen.push('\n');
            }
        });
        // dbus-monitor needs a moment to become a monitor on the bus.
        std::thread::sleep(Duration::from_millis(300));
        Monitor { child, seen }
    }

    fn text(&self) -> String {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sign_in_and_a_rejected_login_are_announced_once_each() {
    let monitor = Monitor::start();
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "2")]);
    let sandbox = Sandbox::new("e2e-notify", &idp.issuer);
    sandbox.login_browser();
    wait_until("the sign-in notification", Duration::from_secs(5), || {
        monitor.text().contains("Signed in to e2e-notify")
    });
    assert!(
        monitor
            .text()
            .contains("alice@example.com (groups: developers, platform)"),
        "{}",
        monitor.text()
    );

    // Refreshes that work are not announced.
    let first_refresh_token = sandbox.stored_refresh_token();
    wait_until("a refresh", Duration::from_secs(10), || {
        idp.refresh_calls() >= 2
    });
    assert_eq!(
        monitor.text().matches("e2e-notify").count(),
        1,
        "{}",
        monitor.text()
    );

    // Reusing a rotated refresh token makes the IdP revoke the grant: the next refresh is
    // rejected, and the user hears about it once.
    let (status, _) = idp.refresh_directly(&first_refresh_token);
    assert_eq!(status, 400);
    wait_until(
        "the sign-in-needed notification",
        Duration::from_secs(10),
        || monitor.text().contains("e2e-notify: sign-in needed"),
    );
    sandbox.run(&["token", "--no-interactive"]).assert_code(4);
    sandbox.run(&["token", "--no-interactive"]).assert_code(4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        monitor.text().matches("e2e-notify: sign-in needed").count(),
        1,
        "{}",
        monitor.text()
    );
}

#[test]
fn notifications_can_be_turned_off() {
    let monitor = Monitor::start();
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-quiet", &idp.issuer);
    sandbox.set_env("STAGEPASS_NOTIFY", "0");
    sandbox.login_browser();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!monitor.text().contains("e2e-quiet"), "{}", monitor.text());
}

#[test]
fn claims_reach_the_notification_as_plain_text() {
    let monitor = Monitor::start();
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-notify-markup", &idp.issuer);
    sandbox.set_env("STAGEPASS_TEST_USER", "mallory");
    sandbox.login_browser();
    wait_until("the sign-in notification", Duration::from_secs(5), || {
        monitor.text().contains("Signed in to e2e-notify-markup")
    });
    let text = monitor.text();
    assert!(
        text.contains("(groups: &lt;a href=&quot;https://evil.example/&quot;&gt;click&lt;/a&gt;, "),
        "{text}"
    );
    assert!(!text.contains("<a href"), "{text}");
    assert!(text.contains("mallory\\u001b]0;pwned"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}
