use stagepass_proto::{AgentError, ErrorKind, Response};
use tokio::sync::broadcast::error::RecvError;

use super::status::status;
use crate::conn::Connection;
use crate::errors;
use crate::sessions::Agent;

/// Sends a snapshot, then every state change, until the client goes away.
pub(crate) async fn subscribe(
    agent: &Agent,
    conn: &mut Connection,
) -> Result<Response, AgentError> {
    // Subscribe before the snapshot, so no change falls between the two.
    let mut events = agent.sessions.subscribe();
    let gone = || errors::reply(ErrorKind::Internal, "the subscriber went away", None);
    conn.write(&status(agent).await?)
        .await
        .map_err(|_| gone())?;
    loop {
        let response = match events.recv().await {
            Ok(event) => Response::Event(event),
            // Too slow to keep up: a fresh snapshot replaces the missed events.
            Err(RecvError::Lagged(_)) => status(agent).await?,
            Err(RecvError::Closed) => return Ok(Response::ShuttingDown),
        };
        conn.write(&response).await.map_err(|_| gone())?;
    }
}
