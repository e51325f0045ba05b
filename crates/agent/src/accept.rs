//! Accepting connections so that a flood cannot take the agent down: each listener has its
//! own cap on open connections (a share of the descriptor limit, so the proxy or the sign-in
//! listener, which any local user can reach, cannot starve the IPC socket), and a failing
//! accept (out of descriptors, out of memory) backs off instead of spinning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Which listener: each gets a share of the open-files limit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listener {
    /// The user's own clients; the share that must always remain.
    Ipc,
    /// The local proxy (127.0.0.1 and [::1] together); each connection may hold a second
    /// descriptor upstream.
    Proxy,
    /// A browser sign-in's loopback listener: one real request, the rest is noise.
    SignIn,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Ipc => "IPC socket",
            Listener::Proxy => "proxy",
            Listener::SignIn => "sign-in listener",
        }
    }

    /// With the usual limit of 1024: IPC 256, proxy 128 (up to 256 descriptors with their
    /// upstreams), sign-in 64, leaving ~450 for files, the keychain and refresh workers.
    fn cap(self) -> usize {
        let limit = open_files_limit();
        let share = match self {
            Listener::Ipc => limit / 4,
            Listener::Proxy => limit / 8,
            Listener::SignIn => limit / 16,
        };
        share.clamp(4, 4096)
    }
}

/// The connection cap of one listener (shared by clones: the proxy's v4 and v6 sockets) and
/// the accept back-off of one accept loop.
pub(crate) struct Gate {
    listener: Listener,
    permits: Arc<Semaphore>,
    backoff: Duration,
    failures: u64,
}

impl Gate {
    pub(crate) fn new(listener: Listener) -> Gate {
        Gate {
            listener,
            permits: Arc::new(Semaphore::new(listener.cap())),
            backoff: Duration::ZERO,
            failures: 0,
        }
    }

    /// Another accept loop under the same cap.
    pub(crate) fn share(&self) -> Gate {
        Gate {
            listener: self.listener,
            permits: self.permits.clone(),
            backoff: Duration::ZERO,
            failures: 0,
        }
    }

    /// The next connection, once one is below the cap: until then, new connections wait in
    /// the kernel's backlog, first come first served, holding no descriptor of the agent.
    /// The permit is the connection's place: drop it with the connection. Cancel-safe.
    pub(crate) async fn accept<S, A, F>(
        &mut self,
        mut accept: impl FnMut() -> F,
    ) -> (S, OwnedSemaphorePermit)
    where
        F: Future<Output = std::io::Result<(S, A)>>,
    {
        let permit = loop {
            match self.permits.clone().acquire_owned().await {
                Ok(permit) => break permit,
                // Only a closed semaphore fails, and this one is never closed.
                Err(_) => self.permits = Arc::new(Semaphore::new(self.listener.cap())),
            }
        };
        loop {
            match accept().await {
                Ok((stream, _)) => {
                    if self.failures > 0 {
                        tracing::info!(
                            "{}: accepting again after {} failed accepts",
                            self.listener.name(),
                            self.failures
                        );
                    }
                    self.failures = 0;
                    self.backoff = Duration::ZERO;
                    return (stream, permit);
                }
                Err(err) => {
                    // One line per run of failures: the log must not fill at the flood's pace.
                    if self.failures == 0 {
                        tracing::warn!(
                            "{}: accept failed: {err}; retrying with back-off",
                            self.listener.name()
                        );
                    }
                    self.failures += 1;
                    self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }
}

/// The soft limit on open descriptors, read once.
fn open_files_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        crate::process::open_files_limit()
            .map_or(1024, |limit| usize::try_from(limit).unwrap_or(usize::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_doubling_up_to_a_second_and_success_resets() {
        let mut gate = Gate::new(Listener::SignIn);
        let mut failing = 12;
        let started = tokio::time::Instant::now();
        let attempts = std::cell::Cell::new(0);
        let (stream, _permit) = gate
            .accept(|| {
                attempts.set(attempts.get() + 1);
                let result = if failing > 0 {
                    failing -= 1;
                    Err(std::io::Error::other("EMFILE"))
                } else {
                    Ok(((), ()))
                };
                std::future::ready(result)
            })
            .await;
        let () = stream;
        assert_eq!(attempts.get(), 13);
        // 5+10+…+640 ms, then 1 s four times: 5.275 s for 12 failures, not a busy loop.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(5275) && waited < Duration::from_millis(5300),
            "{waited:?}"
        );
        assert_eq!(gate.backoff, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_listener_at_its_cap_waits_for_a_connection_to_end() {
        let mut gate = Gate::new(Listener::SignIn);
        let cap = Listener::SignIn.cap();
        let mut held = Vec::new();
        for _ in 0..cap {
            held.push(gate.accept(|| std::future::ready(Ok(((), ())))).await.1);
        }
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            gate.accept(|| std::future::ready(Ok(((), ())))),
        )
        .await;
        assert!(blocked.is_err(), "the cap of {cap} let one more in");
        held.pop();
        let _ = gate.accept(|| std::future::ready(Ok(((), ())))).await;
    }
}
