//! Desktop notifications through the freedesktop notification service (notify-rust). The
//! agent stays quiet when everything works: it speaks on sign-in, when a sign-in is needed,
//! and once per episode of failing refreshes while tokens are still valid.

use std::sync::Arc;

use stagepass_core::text::one_line;

pub use crate::notify_ask::{Question, Reply};

/// Injected so the agent's logic is testable without a desktop.
pub trait Notifier: Send + Sync {
    fn notify(&self, summary: &str, body: &str);

    /// Asks the developer about a request of an `--ask` delegation, with actions; `reply`
    /// gets the answer, if one is chosen; `done` resolves when the request no longer waits.
    /// By default nothing is shown: the request waits for `stagepass delegate approve|deny`.
    fn ask(&self, question: Question, reply: Reply, done: tokio::sync::oneshot::Receiver<()>) {
        let _ = (question, reply, done);
    }
}

/// The desktop's notification service. A missing service is a log line, never a failure.
pub struct DesktopNotifier;

#[cfg(feature = "desktop-notifications")]
impl Notifier for DesktopNotifier {
    fn notify(&self, summary: &str, body: &str) {
        let (summary, body) = (one_line(summary).into_owned(), markup_safe(body));
        // notify-rust blocks on D-Bus; keep it off the agent's only async thread.
        std::thread::spawn(move || {
            let shown = notify_rust::Notification::new()
                .appname("stagepass")
                .summary(&summary)
                .body(&body)
                .timeout(notify_rust::Timeout::Milliseconds(8000))
                .show();
            if let Err(err) = shown {
                tracing::info!("no desktop notification ({err}): {summary}: {body}");
            }
        });
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    fn ask(&self, question: Question, reply: Reply, done: tokio::sync::oneshot::Receiver<()>) {
        let body = markup_safe(&question.body());
        crate::notify_ask::ask_desktop(question, body, reply, done);
    }
}

/// Built without `desktop-notifications` (the macOS compile check, which has no Cocoa
/// headers for notify-rust's macOS backend): what would have been shown goes to the log.
#[cfg(not(feature = "desktop-notifications"))]
impl Notifier for DesktopNotifier {
    fn notify(&self, summary: &str, body: &str) {
        tracing::info!(
            "no desktop notifications in this build: {}: {}",
            one_line(summary),
            markup_safe(body)
        );
    }
}

/// A notification body as plain text. Bodies carry IdP claims and error descriptions, and
/// servers may render a subset of HTML in them (`<a href>`, `<img src>`: the freedesktop
/// body markup), so markup characters become entities and control characters escapes.
fn markup_safe(body: &str) -> String {
    stagepass_core::html::escape(&one_line(body))
}

/// Drops notifications (`STAGEPASS_NOTIFY=0`, and tests).
pub struct Silent;

impl Notifier for Silent {
    fn notify(&self, _summary: &str, _body: &str) {}
}

/// Honours the config's `[desktop] notifications = false` (the tray's Settings). The file is
/// read when a notification is due, which is rare, so a change applies without a restart; an
/// unreadable config leaves notifications on.
pub struct ConfigGated {
    pub inner: Arc<dyn Notifier>,
    pub config_path: std::path::PathBuf,
}

impl Notifier for ConfigGated {
    fn notify(&self, summary: &str, body: &str) {
        if self.enabled() {
            self.inner.notify(summary, body);
        }
    }

    fn ask(&self, question: Question, reply: Reply, done: tokio::sync::oneshot::Receiver<()>) {
        if self.enabled() {
            self.inner.ask(question, reply, done);
        }
    }
}

impl ConfigGated {
    fn enabled(&self) -> bool {
        stagepass_core::config::Config::load(&self.config_path)
            .map_or(true, |config| config.desktop.notifications)
    }
}

pub(crate) fn signed_in(
    notifier: &Arc<dyn Notifier>,
    profile: &str,
    claims: Option<&serde_json::Value>,
) {
    let claim = |key: &str| claims.and_then(|claims| claims.get(key));
    let who = claim("email")
        .or(claim("preferred_username"))
        .or(claim("sub"))
        .and_then(|value| value.as_str())
        .unwrap_or("you");
    let groups = claim("groups")
        .and_then(|groups| groups.as_array())
        .map(|groups| {
            groups
                .iter()
                .filter_map(|group| group.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|groups| !groups.is_empty())
        .map(|groups| format!(" (groups: {groups})"))
        .unwrap_or_default();
    notifier.notify(
        &format!("Signed in to {profile}"),
        &format!("Signed in as {who}{groups}."),
    );
}

pub(crate) fn sign_in_needed(notifier: &Arc<dyn Notifier>, profile: &str, reason: &str) {
    notifier.notify(
        &format!("{profile}: sign-in needed"),
        &format!(
            "The identity provider rejected the login ({reason}). Run `stagepass login {profile}`."
        ),
    );
}

pub(crate) fn refresh_failing(notifier: &Arc<dyn Notifier>, profile: &str, reason: &str) {
    notifier.notify(
        &format!("{profile}: refresh failing"),
        &format!("The identity provider is unreachable ({reason}). Current tokens still work; stagepass keeps retrying."),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Notifier for Recorder {
        fn notify(&self, summary: &str, _body: &str) {
            self.0.lock().unwrap().push(summary.to_string());
        }
    }

    #[test]
    fn bodies_carry_no_markup_and_no_control_characters() {
        assert_eq!(
            markup_safe("<a href=\"https://x\">x</a> & <img src=x>\u{1b}[2J"),
            "&lt;a href=&quot;https://x&quot;&gt;x&lt;/a&gt; &amp; &lt;img src=x&gt;\\u001b[2J"
        );
    }

    #[test]
    fn the_config_can_turn_notifications_off() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.toml");
        let recorder = Arc::new(Recorder::default());
        let gated = ConfigGated {
            inner: recorder.clone(),
            config_path: config_path.clone(),
        };
        gated.notify("no config: on", "");
        std::fs::write(&config_path, "[desktop]\nnotifications = false\n").unwrap();
        gated.notify("off", "");
        std::fs::write(&config_path, "[desktop]\nnotifications = true\n").unwrap();
        gated.notify("on again", "");
        assert_eq!(*recorder.0.lock().unwrap(), ["no config: on", "on again"]);
    }
}
