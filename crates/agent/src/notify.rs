//! Desktop notifications through the freedesktop notification service (notify-rust). The
//! agent stays quiet when everything works: it speaks on sign-in, when a sign-in is needed,
//! and once per episode of failing refreshes while tokens are still valid.

use std::sync::Arc;

/// Injected so the agent's logic is testable without a desktop.
pub trait Notifier: Send + Sync {
    fn notify(&self, summary: &str, body: &str);
}

/// The desktop's notification service. A missing service is a log line, never a failure.
pub struct DesktopNotifier;

impl Notifier for DesktopNotifier {
    fn notify(&self, summary: &str, body: &str) {
        let (summary, body) = (summary.to_string(), body.to_string());
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
}

/// Drops notifications (notifications off in the config).
pub struct Silent;

impl Notifier for Silent {
    fn notify(&self, _summary: &str, _body: &str) {}
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
