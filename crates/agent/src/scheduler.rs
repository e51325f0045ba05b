//! Proactive refresh: every signed-in session is refreshed ahead of expiry, so callers find
//! a valid token in memory instead of waiting for the IdP.

use std::sync::Arc;
use std::time::Duration;

use crate::handlers::refresh;
use crate::sessions::Agent;

/// With nothing scheduled, look again this often anyway (cheap, and robust to a missed wake).
const IDLE_CHECK: Duration = Duration::from_secs(300);

pub(crate) async fn run(agent: Arc<Agent>) {
    loop {
        let now = agent.now();
        let next = agent
            .sessions()
            .iter()
            .filter_map(|(_, session)| session.data().next_attempt())
            .min();
        let wait = next.map_or(IDLE_CHECK, |at| at.duration_since(now).unwrap_or_default());
        tokio::select! {
            _ = tokio::time::sleep(wait.min(IDLE_CHECK)) => {}
            _ = agent.schedule_changed.notified() => continue,
        }
        for (name, session) in agent.sessions() {
            let due = |session: &crate::sessions::Session| {
                session
                    .data()
                    .next_attempt()
                    .is_some_and(|at| at <= agent.now())
            };
            if !due(&session) {
                continue;
            }
            let _exclusive = session.exclusive.lock().await;
            // A client may have refreshed while this task waited for the lock.
            if due(&session)
                && let Err(err) = refresh(&agent, &name, &session).await
            {
                tracing::warn!(profile = %name, "proactive refresh failed: {}", err.message);
            }
        }
    }
}
