//! `Request::DelegatePending` and `Request::DelegateAnswer`: the terminal's side of approval
//! ([`super::approval`]). A process running under `exec --agent` gets neither
//! ([`super::refuse_held`]): it cannot answer its own requests through the socket.

use stagepass_proto::approval::{Decision, MAX_ASK_TIMEOUT_SECS};
use stagepass_proto::{AgentError, ErrorKind, Response};

use super::approval::{Answer, AnsweredBy};
use crate::errors;
use crate::sessions::Agent;

/// `--ask-timeout`: between a second and [`MAX_ASK_TIMEOUT_SECS`].
pub(crate) fn check_ask(ask: Option<u64>) -> Result<Option<u64>, AgentError> {
    match ask {
        Some(secs) if secs == 0 || secs > MAX_ASK_TIMEOUT_SECS => Err(errors::reply(
            ErrorKind::BadRequest,
            format!(
                "an ask timeout lasts between 1 and {MAX_ASK_TIMEOUT_SECS} seconds, not {secs}"
            ),
            None,
        )),
        ask => Ok(ask),
    }
}

pub(crate) fn pending(agent: &Agent) -> Response {
    Response::Pending(agent.delegations.approvals.list())
}

pub(crate) fn answer(agent: &Agent, id: &str, decision: Decision) -> Result<Response, AgentError> {
    let by = AnsweredBy::Cli;
    match agent
        .delegations
        .approvals
        .answer(id, Answer { decision, by })
    {
        Some(info) => Ok(Response::Pending(vec![info])),
        None => Err(errors::reply(
            ErrorKind::BadRequest,
            format!(
                "no request `{}` waits for an answer (answered, timed out, or its delegation was revoked)",
                stagepass_core::text::one_line(id)
            ),
            Some("`stagepass delegate pending` lists the waiting requests".into()),
        )),
    }
}
