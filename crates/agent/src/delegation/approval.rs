//! The requests waiting for the developer's answer: a delegation made with `--ask` sends a
//! request outside its scope here instead of refusing it, and the proxy waits (bounded by
//! the delegation's ask timeout) for one of: `delegate approve|deny` from a terminal, an
//! action of the desktop notification, the timeout, or the delegation's revocation.
//!
//! Bounds: at most [`MAX_PENDING_PER_DELEGATION`] requests of one delegation wait at once
//! (more are refused at once: a flood asks nothing); a waiting request holds only its own
//! connection (its body is not read); and its entry is removed by whoever ends the wait, or
//! by [`Waiter`]'s drop when the caller goes away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use stagepass_proto::approval::{Decision, PendingRequest};
use tokio::sync::oneshot;

/// Requests of one delegation that may wait at once.
pub(crate) const MAX_PENDING_PER_DELEGATION: usize = 4;

/// Who ended a wait, for the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnsweredBy {
    Cli,
    Notification,
    /// No answer in time.
    Timeout,
    /// The delegation was revoked (or its `exec` ended) while the request waited.
    Revoked,
    /// An "allow for this delegation" answer to another request covers this one too.
    Covered,
}

impl AnsweredBy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Cli => "cli",
            AnsweredBy::Notification => "notification",
            AnsweredBy::Timeout => "timeout",
            AnsweredBy::Revoked => "revoked",
            AnsweredBy::Covered => "covered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub decision: Decision,
    pub by: AnsweredBy,
}

struct Entry {
    info: PendingRequest,
    answer: oneshot::Sender<Answer>,
    /// Dropped with the entry: tells the notification that asked to go away.
    _asked: Option<oneshot::Sender<()>>,
}

type Entries = Arc<Mutex<HashMap<String, Entry>>>;

/// The waiting requests; cheap to clone into the thread of a notification's actions.
#[derive(Clone, Default)]
pub(crate) struct Approvals(Entries);

/// Why a request could not wait.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// [`MAX_PENDING_PER_DELEGATION`] already wait.
    TooMany,
    /// No randomness for an id.
    NoId,
}

/// One waiting request: its answer arrives on `answer`; dropping it forgets the request.
pub(crate) struct Waiter {
    approvals: Approvals,
    pub id: String,
    pub answer: oneshot::Receiver<Answer>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.approvals.0).remove(&self.id);
    }
}

impl Approvals {
    /// Registers a request; `asked` is dropped when the request stops waiting (a
    /// notification's thread listens to it).
    pub(crate) fn open(
        &self,
        mut info: PendingRequest,
        asked: Option<oneshot::Sender<()>>,
    ) -> Result<Waiter, Full> {
        let mut entries = lock(&self.0);
        let waiting = entries
            .values()
            .filter(|entry| entry.info.delegation == info.delegation)
            .count();
        if waiting >= MAX_PENDING_PER_DELEGATION {
            return Err(Full::TooMany);
        }
        let id = loop {
            let mut bytes = [0u8; 4];
            getrandom::fill(&mut bytes).map_err(|_| Full::NoId)?;
            let id = stagepass_core::hex::lower(&bytes);
            if !entries.contains_key(&id) {
                break id;
            }
        };
        info.id = id.clone();
        let (sender, answer) = oneshot::channel();
        entries.insert(
            id.clone(),
            Entry {
                info,
                answer: sender,
                _asked: asked,
            },
        );
        Ok(Waiter {
            approvals: self.clone(),
            id,
            answer,
        })
    }

    /// Answers the request `id`: its record, when it was still waiting.
    pub(crate) fn answer(&self, id: &str, answer: Answer) -> Option<PendingRequest> {
        let entry = lock(&self.0).remove(id)?;
        // A waiter that is gone already refused its caller.
        let _ = entry.answer.send(answer);
        Some(entry.info)
    }

    /// Answers every request of `delegation` that `covered` accepts.
    pub(crate) fn answer_all(
        &self,
        delegation: &str,
        answer: Answer,
        covered: impl Fn(&PendingRequest) -> bool,
    ) -> usize {
        let ids: Vec<String> = lock(&self.0)
            .values()
            .filter(|entry| entry.info.delegation == delegation && covered(&entry.info))
            .map(|entry| entry.info.id.clone())
            .collect();
        ids.iter()
            .filter(|id| self.answer(id, answer).is_some())
            .count()
    }

    /// Refuses every request of `delegation`: it was revoked.
    pub(crate) fn end(&self, delegation: &str) {
        let revoked = Answer {
            decision: Decision::Deny,
            by: AnsweredBy::Revoked,
        };
        self.answer_all(delegation, revoked, |_| true);
    }

    /// The waiting requests, oldest first.
    pub(crate) fn list(&self) -> Vec<PendingRequest> {
        let mut list: Vec<PendingRequest> = lock(&self.0)
            .values()
            .map(|entry| entry.info.clone())
            .collect();
        list.sort_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(delegation: &str) -> PendingRequest {
        PendingRequest {
            id: String::new(),
            delegation: delegation.into(),
            route: "api".into(),
            method: "POST".into(),
            path: "/x".into(),
            missing: "method".into(),
            since: 1,
            deadline: 61,
        }
    }

    const ONCE: Answer = Answer {
        decision: Decision::AllowOnce,
        by: AnsweredBy::Cli,
    };

    #[tokio::test]
    async fn an_answer_reaches_its_waiter_once_and_a_dropped_waiter_is_forgotten() {
        let approvals = Approvals::default();
        let mut waiter = approvals.open(info("a"), None).unwrap();
        assert_eq!(approvals.list().len(), 1);
        assert_eq!(approvals.list()[0].id, waiter.id);
        assert!(approvals.answer(&waiter.id, ONCE).is_some());
        assert!(approvals.answer(&waiter.id, ONCE).is_none(), "once");
        assert_eq!((&mut waiter.answer).await.unwrap(), ONCE);
        let waiter = approvals.open(info("a"), None).unwrap();
        drop(waiter);
        assert!(approvals.list().is_empty(), "gone with its caller");
    }

    #[tokio::test]
    async fn a_delegation_waits_with_a_few_requests_only_and_revocation_refuses_them() {
        let approvals = Approvals::default();
        let (asked, notification) = oneshot::channel();
        let mut waiters = vec![approvals.open(info("a"), Some(asked)).unwrap()];
        for _ in 1..MAX_PENDING_PER_DELEGATION {
            waiters.push(approvals.open(info("a"), None).unwrap());
        }
        assert_eq!(
            approvals.open(info("a"), None).err(),
            Some(Full::TooMany),
            "a flood asks nothing"
        );
        let other = approvals.open(info("b"), None).unwrap();
        approvals.end("a");
        for mut waiter in waiters {
            let answer = (&mut waiter.answer).await.unwrap();
            assert_eq!(answer.decision, Decision::Deny);
            assert_eq!(answer.by, AnsweredBy::Revoked);
        }
        assert!(notification.await.is_err(), "the notification is told");
        assert_eq!(approvals.list().len(), 1, "b still waits");
        drop(other);
    }
}
