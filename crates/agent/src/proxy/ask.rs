//! A request outside the scope of a delegation made with `--ask`: instead of a 403 at once it
//! waits, bounded by the delegation's ask timeout, for the developer's answer
//! ([`crate::delegation::approval`]), asked in a desktop notification with actions and
//! answerable from a terminal (`stagepass delegate approve|deny`). Nothing of it reaches the
//! upstream before an allow; a deny, the timeout, the delegation's revocation or too many
//! waiting requests refuse it with the scope check's 403, saying which.
//!
//! No desktop (no notification service, or notifications off) is not a reason to refuse at
//! once: the request waits all the same, listed by `stagepass delegate pending`, so a
//! terminal can answer, and is refused at the timeout.

use std::time::Duration;

use serde::Serialize;
use stagepass_core::text::one_line;
use stagepass_proto::approval::{Decision, PendingRequest};
use tokio::sync::oneshot;

use super::scope_refusal::Refusal;
use crate::audit::Caller;
use crate::delegation::approval::{Answer, AnsweredBy, Full};
use crate::delegation::scope::Grant;
use crate::notify::Question;
use crate::sessions::Agent;

/// Characters of a path kept in a waiting request (shown by `delegate pending`, the
/// notification and the audit).
const MAX_PATH_CHARS: usize = 256;

/// How a request that asked was refused, for the 403 and the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    Denied(AnsweredBy),
    TimedOut,
    Revoked,
    /// Too many requests of the delegation already waited: refused without asking.
    TooMany,
}

impl Asked {
    /// The 403's `approval` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Asked::Denied(_) => "denied",
            Asked::TimedOut => "timed_out",
            Asked::Revoked => "revoked",
            Asked::TooMany => "too_many_pending",
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Asked::Denied(by) => format!("the developer denied it ({})", by.as_str()),
            Asked::TimedOut => "nobody answered in time".into(),
            Asked::Revoked => "the delegation was revoked while it waited".into(),
            Asked::TooMany => format!(
                "{} requests of this delegation already wait for an answer",
                crate::delegation::approval::MAX_PENDING_PER_DELEGATION
            ),
        }
    }
}

/// One audit line per decision: the delegation, who answered, never a key.
#[derive(Serialize)]
struct DecisionLine<'a> {
    event: &'static str,
    #[serde(flatten)]
    caller: &'a Caller,
    id: &'a str,
    route: &'a str,
    method: &'a str,
    path: &'a str,
    missing: &'a str,
    decision: &'a str,
    answered_by: &'a str,
    outcome: &'a str,
}

/// Waits for the answer to `refusal`'s request; `Ok` lets it through.
pub(crate) async fn wait(agent: &Agent, refusal: &Refusal<'_>, secs: u64) -> Result<(), Asked> {
    let now = crate::delegation::now(agent);
    let path = bounded(&one_line(refusal.path));
    let info = PendingRequest {
        id: String::new(),
        delegation: refusal.accepted.name.clone(),
        route: refusal.route.to_string(),
        method: one_line(refusal.method.as_str()).into_owned(),
        path,
        missing: refusal.missing.as_str().to_string(),
        since: now,
        deadline: now.saturating_add(secs),
    };
    let approvals = &agent.delegations.approvals;
    let (asked, done) = oneshot::channel();
    let mut waiter = match approvals.open(info.clone(), Some(asked)) {
        Ok(waiter) => waiter,
        Err(Full::TooMany) => return Err(Asked::TooMany),
        Err(Full::NoId) => return Err(Asked::TimedOut),
    };
    let question = Question {
        request: PendingRequest {
            id: waiter.id.clone(),
            ..info.clone()
        },
        timeout_secs: secs,
    };
    let replies = approvals.clone();
    let id = waiter.id.clone();
    agent.deps.notifier.ask(
        question,
        Box::new(move |decision| {
            let by = AnsweredBy::Notification;
            replies.answer(&id, Answer { decision, by });
        }),
        done,
    );
    let answer = tokio::select! {
        answer = &mut waiter.answer => answer.unwrap_or(Answer { decision: Decision::Deny, by: AnsweredBy::Revoked }),
        () = tokio::time::sleep(Duration::from_secs(secs)) => Answer { decision: Decision::Deny, by: AnsweredBy::Timeout },
    };
    let id = waiter.id.clone();
    // Forgotten now, whoever ended the wait (the notification goes with it).
    drop(waiter);
    let info = PendingRequest { id, ..info };
    let decided = decide(agent, refusal, &info, answer).await;
    record(agent, refusal, &info, answer, decided);
    decided.map(|_| ())
}

/// What an answer means for the request; `Ok(note)` lets it through.
async fn decide(
    agent: &Agent,
    refusal: &Refusal<'_>,
    info: &PendingRequest,
    answer: Answer,
) -> Result<&'static str, Asked> {
    let name = &refusal.accepted.name;
    match (answer.decision, answer.by) {
        (_, AnsweredBy::Revoked) => return Err(Asked::Revoked),
        (_, AnsweredBy::Timeout) => return Err(Asked::TimedOut),
        (Decision::Deny, by) => return Err(Asked::Denied(by)),
        _ => {}
    }
    // Allowed: unless the delegation ended in the meantime (expired while it waited).
    if !agent.delegations.live(name, crate::delegation::now(agent)) {
        return Err(Asked::Revoked);
    }
    if answer.decision == Decision::AllowOnce {
        return Ok("allowed once");
    }
    let Some(grant) = Grant::of(refusal.route, refusal.method, refusal.path) else {
        return Ok("allowed once: this path or method cannot widen a scope");
    };
    match agent
        .delegations
        .widen(name, grant.clone(), crate::delegation::now(agent))
        .await
    {
        Ok(true) => {}
        Ok(false) => return Ok("allowed once: the delegation holds as many approvals as it may"),
        Err(err) => {
            tracing::warn!("allowed once: the widened scope was not saved: {err}");
            return Ok("allowed once: the widened scope was not saved");
        }
    }
    // What else waits and the new grant covers goes through too.
    let covered = Answer {
        decision: Decision::AllowOnce,
        by: AnsweredBy::Covered,
    };
    agent
        .delegations
        .approvals
        .answer_all(name, covered, |other| {
            other.id != info.id
                && http::Method::from_bytes(other.method.as_bytes())
                    .is_ok_and(|method| grant.covers(&other.route, &method, &other.path))
        });
    Ok("allowed; the delegation's scope now covers it")
}

fn record(
    agent: &Agent,
    refusal: &Refusal<'_>,
    info: &PendingRequest,
    answer: Answer,
    decided: Result<&'static str, Asked>,
) {
    let decision = match (decided, answer.decision) {
        (Err(Asked::TimedOut), _) => "timed_out",
        (Err(Asked::Revoked), _) => "revoked",
        (Err(_), _) => "deny",
        (Ok(_), Decision::AllowAlways) => "allow_always",
        (Ok(_), _) => "allow_once",
    };
    let outcome = match decided {
        Ok(note) => format!("{note} (answered by {})", answer.by.as_str()),
        Err(asked) => format!("refused: {}", asked.describe()),
    };
    agent.record(&DecisionLine {
        event: "approval",
        caller: &Caller::delegation(&refusal.accepted.name, refusal.accepted.kind),
        id: &info.id,
        route: &info.route,
        method: &info.method,
        path: &info.path,
        missing: &info.missing,
        decision,
        answered_by: answer.by.as_str(),
        outcome: &outcome,
    });
}

fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_PATH_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
