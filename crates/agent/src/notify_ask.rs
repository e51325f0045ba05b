//! A waiting request of an `--ask` delegation, asked in a desktop notification with actions
//! (the freedesktop notification spec's `actions` and its `ActionInvoked` signal,
//! <https://specifications.freedesktop.org/notification-spec/latest/protocol.html>): Allow
//! once, Allow for this delegation, Deny. The D-Bus calls block, so each question gets a
//! thread of its own, which closes the notification when the request stops waiting (answered
//! elsewhere, timed out, revoked). Clicking the body ("default") or closing the notification
//! answers nothing: the request waits on for a terminal or the timeout.
//!
//! Any process of the same user on the session bus can send `ActionInvoked`, as it can run
//! `stagepass delegate approve`: asking is the developer's convenience, not a wall against a
//! determined process running as them (an OS sandbox is that).

use stagepass_core::text::one_line;
use stagepass_proto::approval::{Decision, PendingRequest};

/// A request waiting for an answer, as a notification asks about it. Its `method` and
/// `path` come from the caller: escaped before they are shown.
#[derive(Debug, Clone)]
pub struct Question {
    pub request: PendingRequest,
    pub timeout_secs: u64,
}

/// What the notification's action answers.
pub type Reply = Box<dyn FnOnce(Decision) + Send>;

/// The action keys and their labels, in the order a notification shows them.
pub(crate) const ACTIONS: [(&str, &str, Decision); 3] = [
    ("allow", "Allow once", Decision::AllowOnce),
    ("always", "Allow for this delegation", Decision::AllowAlways),
    ("deny", "Deny", Decision::Deny),
];

pub(crate) fn decision(action: &str) -> Option<Decision> {
    ACTIONS
        .iter()
        .find(|(key, _, _)| *key == action)
        .map(|(_, _, decision)| *decision)
}

impl Question {
    pub(crate) fn summary(&self) -> String {
        format!("stagepass: allow `{}`?", one_line(&self.request.delegation))
    }

    /// Plain text; the notifier escapes markup.
    pub(crate) fn body(&self) -> String {
        let request = &self.request;
        format!(
            "{} {} on route {} is outside the delegation's {}. Refused in {} s unless allowed (or: stagepass delegate approve {}).",
            one_line(&request.method),
            one_line(&request.path),
            one_line(&request.route),
            one_line(&request.missing),
            self.timeout_secs,
            request.id
        )
    }
}

/// Shows `question` with its actions on a thread of its own; `reply` gets the action chosen;
/// `done` resolves when the request no longer waits, and the notification is closed then.
#[cfg(all(feature = "desktop-notifications", unix, not(target_os = "macos")))]
pub(crate) fn ask_desktop(
    question: Question,
    body: String,
    reply: Reply,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    use futures_lite::future;
    use notify_rust::{ActionResponse, Notification, Timeout};

    let summary = question.summary();
    let spawned = std::thread::Builder::new()
        .name("stagepass-ask".into())
        .spawn(move || {
            future::block_on(async move {
                let mut notification = Notification::new();
                notification
                    .appname("stagepass")
                    .summary(&summary)
                    .body(&body)
                    .timeout(Timeout::Milliseconds(
                        u32::try_from(question.timeout_secs.saturating_mul(1000))
                            .unwrap_or(u32::MAX),
                    ));
                for (key, label, _) in ACTIONS {
                    notification.action(key, label);
                }
                let handle = match notification.show_async().await {
                    Ok(handle) => handle,
                    Err(err) => {
                        tracing::info!(
                            "no desktop notification ({err}): request {} waits for `stagepass delegate approve|deny`",
                            question.request.id
                        );
                        return;
                    }
                };
                let mut chosen = None;
                let acted = handle.wait_for_action_async(|response| {
                    if let ActionResponse::Custom(action) = response {
                        chosen = decision(action);
                    }
                });
                let answered_elsewhere = async {
                    let _ = done.await;
                };
                let waited = future::or(
                    async {
                        acted.await;
                        false
                    },
                    async {
                        answered_elsewhere.await;
                        true
                    },
                )
                .await;
                if waited {
                    handle.close_async().await;
                } else if let Some(decision) = chosen {
                    reply(decision);
                }
            });
        });
    if let Err(err) = spawned {
        tracing::warn!("cannot start a thread for a notification: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_decisions_and_the_default_action_answers_nothing() {
        assert_eq!(decision("allow"), Some(Decision::AllowOnce));
        assert_eq!(decision("always"), Some(Decision::AllowAlways));
        assert_eq!(decision("deny"), Some(Decision::Deny));
        assert_eq!(decision("default"), None);
        assert_eq!(decision("__closed"), None);
    }

    #[test]
    fn the_question_escapes_what_the_caller_sent() {
        let question = Question {
            request: PendingRequest {
                id: "0a1b2c3d".into(),
                delegation: "claude".into(),
                route: "api".into(),
                method: "POST".into(),
                path: "/x\u{1b}[2J\n".into(),
                missing: "method".into(),
                since: 0,
                deadline: 60,
            },
            timeout_secs: 60,
        };
        let body = question.body();
        assert!(!body.contains('\u{1b}') && !body.contains('\n'), "{body}");
        assert!(body.contains("approve 0a1b2c3d"), "{body}");
    }
}
