//! Proactive refresh: every signed-in session is refreshed ahead of expiry, so callers find
//! a valid token in memory instead of waiting for the IdP. When is the session service's
//! call; this task only sleeps until then.

use std::sync::Arc;

use crate::session;
use crate::sessions::Agent;

pub(crate) async fn run(agent: Arc<Agent>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(session::next_wake(&agent)) => {}
            _ = agent.sessions.schedule_changed() => continue,
        }
        for session in agent.sessions.all() {
            session::refresh_if_due(&agent, &session).await;
        }
    }
}
