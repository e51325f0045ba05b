//! Who is on the other end of an IPC connection: the transport gives the pid (and on Unix the
//! uid), the process table the executables (and who ran a helper). Reading it blocks, so it runs on a thread of its
//! own, once per connection, and only for connections that make an audited request.

use tokio::sync::oneshot;

use crate::ancestry::OsProcesses;
use crate::audit::Caller;
use crate::io_thread::{Batch, IoThread};

/// Lookups waiting at once; more wait for room (each is a connection waiting for its answer,
/// and connections are capped already).
const QUEUED_LOOKUPS: usize = 1024;

pub(crate) struct PeerLookup {
    thread: IoThread<Lookups>,
}

struct Peer {
    client: String,
    pid: Option<i32>,
    uid: Option<u32>,
}

struct Lookups;

impl Batch for Lookups {
    type Item = (Peer, oneshot::Sender<Caller>);

    fn handle(&mut self, lookups: Vec<Self::Item>) {
        for (peer, reply) in lookups {
            let _ = reply.send(Caller::from_peer(
                &OsProcesses,
                &peer.client,
                peer.pid,
                peer.uid,
            ));
        }
    }
}

impl PeerLookup {
    pub(crate) fn start() -> PeerLookup {
        PeerLookup {
            thread: IoThread::start("peer-lookup", QUEUED_LOOKUPS, Lookups),
        }
    }

    /// The caller, as the audit log names it. Call while the client waits for an answer:
    /// a process that is gone has no /proc entry left to read.
    pub(crate) async fn caller(&self, client: &str, pid: Option<i32>, uid: Option<u32>) -> Caller {
        let (reply, answer) = oneshot::channel();
        let peer = Peer {
            client: client.to_string(),
            pid,
            uid,
        };
        if self.thread.submit((peer, reply)).await.is_none() {
            // The agent is stopping: the line still names the pid.
            return Caller::unresolved(client, pid, uid);
        }
        answer
            .await
            .unwrap_or_else(|_| Caller::unresolved(client, pid, uid))
    }

    /// Stops the thread; for the agent's way out.
    pub(crate) fn close(&self) {
        self.thread.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_caller_is_read_from_proc_off_the_loop() {
        let lookup = PeerLookup::start();
        let me = std::process::id() as i32;
        let caller = lookup
            .caller("stagepass-git 0.1.0", Some(me), Some(1000))
            .await;
        assert_eq!(caller.consumer, "git");
        assert_eq!(caller.pid, Some(me));
        let exe = std::env::current_exe().unwrap().display().to_string();
        assert_eq!(caller.exe.as_deref(), Some(exe.as_str()));
        assert!(caller.parent_exe.is_some(), "a helper's parent is named");
        lookup.close();
        let stopped = lookup
            .caller("stagepass-cli 0.1.0", Some(me), Some(1000))
            .await;
        assert_eq!((stopped.consumer.as_str(), stopped.exe), ("cli", None));
    }
}
