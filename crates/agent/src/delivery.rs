//! An audited answer sent by the audit writer thread itself, right after the request's line is
//! written (Unix).
//!
//! A hand-out is answered only once its line is on file. When the connection's task waited
//! for the writer and then sent the answer, every request cost two trips between threads (the
//! writer woken, then the event loop woken back), and with two cores and a busy client, each
//! trip waited for a core. Here the writer, holding a duplicate of the connection's socket,
//! sends the answer in the same turn as the line, and the connection's task goes on to read
//! the client's next request (or, mostly, its goodbye) without waiting. The task waits for
//! the handoff only before answering a next request, so answers still leave in order.
//!
//! A client that lets its socket fill up gets the rest of the answer from a task on the event
//! loop, under the connection's write timeout: the writer thread never waits for a client.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::audit::Caller;
use crate::conn::WRITE_TIMEOUT;
use crate::sync::lock;

/// The answer to send once its line is written: the frames and the socket they go to.
pub(crate) struct Delivery {
    pub socket: OwnedFd,
    pub frame: Vec<u8>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The frame holds the token: never in a log.
        f.debug_struct("Delivery")
            .field("frame_len", &self.frame.len())
            .finish_non_exhaustive()
    }
}

/// The connection's side: resolves once the answer is sent (or the client is gone), with the
/// caller the writer read, for the connection's later requests.
pub(crate) struct Handoff(Arc<State>);

/// The writer's side. Dropped unfinished (a writer gone mid-batch), it still releases the
/// connection, with what the transport said of the caller.
pub(crate) struct Finisher {
    state: Arc<State>,
    unresolved: Option<Caller>,
}

#[derive(Default)]
struct State {
    caller: Mutex<Option<Caller>>,
    done: Notify,
}

/// A handoff for an answer whose caller, should the writer never get to it, is `unresolved`.
pub(crate) fn handoff(unresolved: Caller) -> (Handoff, Finisher) {
    let state = Arc::new(State::default());
    (
        Handoff(state.clone()),
        Finisher {
            state,
            unresolved: Some(unresolved),
        },
    )
}

impl Handoff {
    pub(crate) async fn sent(self) -> Caller {
        loop {
            // A finish before this await leaves a permit: no lost wake-up.
            if let Some(caller) = lock(&self.0.caller).take() {
                return caller;
            }
            self.0.done.notified().await;
        }
    }
}

impl Finisher {
    /// Sends `delivery` without waiting for the client: what the socket does not take now
    /// goes out from a task on `runtime`.
    /// (The agent's writer always has a runtime; only a log built outside one has none.)
    pub(crate) fn deliver(self, delivery: Delivery, caller: Caller, runtime: Option<&Handle>) {
        let socket = UnixStream::from(delivery.socket);
        let mut frame = delivery.frame;
        match (send_now(&socket, &frame), runtime) {
            (Ok(sent), Some(runtime)) if sent < frame.len() => {
                frame.drain(..sent);
                runtime.spawn(async move {
                    send_rest(socket, &frame).await;
                    self.finish(caller);
                });
            }
            (Ok(sent), None) if sent < frame.len() => {
                give_up(&socket);
                self.finish(caller);
            }
            // Sent, or the client is gone: its task finds that out on its next read.
            _ => self.finish(caller),
        }
    }

    fn finish(mut self, caller: Caller) {
        self.unresolved = None;
        *lock(&self.state.caller) = Some(caller);
        self.state.done.notify_one();
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if let Some(caller) = self.unresolved.take() {
            *lock(&self.state.caller) = Some(caller);
            self.state.done.notify_one();
        }
    }
}

/// Writes what the socket takes without blocking (it is the connection's own, non-blocking).
fn send_now(mut socket: &UnixStream, frame: &[u8]) -> std::io::Result<usize> {
    let mut sent = 0;
    while sent < frame.len() {
        match socket.write(&frame[sent..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err),
        }
    }
    Ok(sent)
}

async fn send_rest(socket: UnixStream, rest: &[u8]) {
    let Ok(mut socket) = tokio::net::UnixStream::from_std(socket) else {
        return;
    };
    if !matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(rest)).await,
        Ok(Ok(()))
    ) && let Ok(socket) = socket.into_std()
    {
        give_up(&socket);
    }
}

/// Ends a connection whose client did not take its answer: its task, reading, sees the end
/// at once instead of at its read timeout.
fn give_up(socket: &UnixStream) {
    tracing::debug!("a client did not take its answer; closing the connection");
    let _ = socket.shutdown(std::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn caller(consumer: &str) -> Caller {
        Caller {
            consumer: consumer.into(),
            ..Caller::default()
        }
    }

    /// The agent's end (non-blocking, as tokio keeps it) and the client's.
    fn connection() -> (UnixStream, UnixStream) {
        let (agent, client) = UnixStream::pair().unwrap();
        agent.set_nonblocking(true).unwrap();
        (agent, client)
    }

    /// Far more than a socket's buffer holds, so the writer cannot send it all at once.
    fn large_answer() -> Vec<u8> {
        (0..4 << 20).map(|n: u32| (n % 251) as u8).collect()
    }

    #[tokio::test]
    async fn what_the_socket_cannot_take_at_once_is_sent_by_the_runtime_then_the_handoff_resolves()
    {
        let (agent, mut client) = connection();
        let answer = large_answer();
        let (handoff, finisher) = handoff(caller("unresolved"));
        let runtime = Handle::current();
        let delivery = Delivery {
            socket: OwnedFd::from(agent),
            frame: answer.clone(),
        };
        // On a thread of its own, as the audit writer: it must come back without waiting for
        // the client, who reads nothing yet.
        std::thread::spawn(move || finisher.deliver(delivery, caller("git"), Some(&runtime)))
            .join()
            .unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        assert_eq!(handoff.sent().await.consumer, "git");
        assert!(
            reader.join().unwrap() == answer,
            "the whole answer, in order"
        );
    }

    #[test]
    fn without_a_runtime_a_client_that_cannot_take_its_answer_is_cut_off() {
        let (agent, mut client) = connection();
        let (handoff, finisher) = handoff(caller("unresolved"));
        let delivery = Delivery {
            socket: OwnedFd::from(agent),
            frame: large_answer(),
        };
        finisher.deliver(delivery, caller("git"), None);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert!(got.len() < large_answer().len(), "an end, not a hang");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(handoff.sent()).consumer, "git");
    }

    #[tokio::test]
    async fn a_writer_gone_before_the_answer_still_releases_the_connection() {
        let (handoff, finisher) = handoff(caller("unresolved"));
        drop(finisher);
        assert_eq!(handoff.sent().await.consumer, "unresolved");
    }
}
