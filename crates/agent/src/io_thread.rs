//! A dedicated thread for small blocking work the event loop must not do itself (appending
//! audit lines, saving the remote keys' file, reading /proc).
//!
//! Callers queue items and go on; the thread takes everything queued since its last turn as
//! one batch, so a burst costs one write, not one per item. A caller that must not answer
//! before its item is handled (an audited hand-out must be on disk first) puts a channel in
//! the item and waits on it; the event loop does not wait. The queue is bounded:
//! [`IoThread::submit`] waits for room, [`IoThread::try_submit`] says it is full.
//! [`IoThread::close`] handles whatever is queued before it returns, so a clean stop loses
//! nothing.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::sync::lock;
use tokio::sync::Notify;

/// The work done on the thread, one batch at a time.
pub(crate) trait Batch: Send + 'static {
    type Item: Send + 'static;
    /// Everything queued since the last turn, oldest first.
    fn handle(&mut self, items: Vec<Self::Item>);
}

/// Why an item was not queued; the item comes back.
#[derive(Debug)]
pub(crate) enum Refused<I> {
    Full(I),
    Closed(I),
}

pub(crate) struct IoThread<B: Batch> {
    shared: Arc<Shared<B::Item>>,
    worker: Mutex<Worker<B>>,
}

enum Worker<B> {
    Running(JoinHandle<()>),
    /// No thread could be started: items are handled on the caller, as before this thread
    /// existed. Slower, never wrong.
    Inline(B),
    Stopped,
}

struct Shared<I> {
    queue: Mutex<Queue<I>>,
    /// Wakes the thread when items arrive or the queue closes.
    wake: Condvar,
    /// Wakes callers waiting for room after the thread took a batch.
    room: Notify,
    capacity: usize,
}

struct Queue<I> {
    items: Vec<I>,
    closed: bool,
    /// The thread waits for items: only then does a new one need a wake-up (a system call
    /// on the event loop's thread, and most of a burst finds the thread busy).
    waiting: bool,
}

impl<B: Batch> IoThread<B> {
    /// Starts the thread `name`, holding at most `capacity` queued items.
    pub(crate) fn start(name: &str, capacity: usize, batch: B) -> IoThread<B> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed: false,
                waiting: false,
            }),
            wake: Condvar::new(),
            room: Notify::new(),
            capacity: capacity.max(1),
        });
        // The batch moves into the thread; keep it here until the spawn is known to work.
        let slot = Arc::new(Mutex::new(Some(batch)));
        let spawned = {
            let shared = shared.clone();
            let slot = slot.clone();
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    if let Some(batch) = lock(&slot).take() {
                        run(&shared, batch);
                    }
                })
        };
        let worker = match spawned {
            Ok(thread) => Worker::Running(thread),
            Err(err) => {
                tracing::error!("cannot start the {name} thread ({err}); doing its work inline");
                match lock(&slot).take() {
                    Some(batch) => Worker::Inline(batch),
                    None => Worker::Stopped,
                }
            }
        };
        IoThread {
            shared,
            worker: Mutex::new(worker),
        }
    }

    /// Queues `item` unless the queue is full or closed. Never blocks on the thread's work.
    pub(crate) fn try_submit(&self, item: B::Item) -> Result<(), Refused<B::Item>> {
        if let Worker::Inline(batch) = &mut *lock(&self.worker) {
            batch.handle(vec![item]);
            return Ok(());
        }
        let mut queue = lock(&self.shared.queue);
        if queue.closed {
            return Err(Refused::Closed(item));
        }
        if queue.items.len() >= self.shared.capacity {
            return Err(Refused::Full(item));
        }
        queue.items.push(item);
        let waiting = std::mem::take(&mut queue.waiting);
        drop(queue);
        if waiting {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Queues `item`, waiting for room when the queue is full; the item comes back once
    /// closed.
    pub(crate) async fn submit(&self, mut item: B::Item) -> Result<(), B::Item> {
        loop {
            // Registered before the attempt, so room made in between is not missed.
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_submit(item) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed(back)) => return Err(back),
                Err(Refused::Full(back)) => {
                    item = back;
                    room.await;
                }
            }
        }
    }

    /// Refuses new items, handles the queued ones and stops the thread. Blocks until then:
    /// for the agent's way out (and drops), when nothing else is left to run.
    pub(crate) fn close(&self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_one();
        let worker = std::mem::replace(&mut *lock(&self.worker), Worker::Stopped);
        if let Worker::Running(thread) = worker
            && thread.join().is_err()
        {
            tracing::error!("an I/O thread of the agent panicked; its last items may be lost");
        }
    }
}

impl<B: Batch> Drop for IoThread<B> {
    fn drop(&mut self) {
        self.close();
    }
}

/// The thread: waits for items, handles them as one batch. Should a batch panic, its items'
/// channels are dropped with it, which is what their waiters see.
fn run<B: Batch>(shared: &Shared<B::Item>, mut batch: B) {
    loop {
        let (items, closed) = {
            let mut queue = lock(&shared.queue);
            while queue.items.is_empty() && !queue.closed {
                queue.waiting = true;
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(|poison| poison.into_inner());
            }
            queue.waiting = false;
            (std::mem::take(&mut queue.items), queue.closed)
        };
        shared.room.notify_waiters();
        if !items.is_empty() {
            batch.handle(items);
        }
        // Closed queues take nothing new, so the batch just handled was the last one.
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Records the batches it was given; the first batch waits for the test's go.
    struct Recorder {
        batches: mpsc::Sender<Vec<u32>>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl Batch for Recorder {
        type Item = u32;
        fn handle(&mut self, items: Vec<u32>) {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
            let _ = self.batches.send(items);
        }
    }

    fn recorder(
        gated: bool,
    ) -> (
        IoThread<Recorder>,
        mpsc::Receiver<Vec<u32>>,
        mpsc::Sender<()>,
    ) {
        let (batches, seen) = mpsc::channel();
        let (go, gate) = mpsc::channel();
        let thread = IoThread::start(
            "test-io",
            8,
            Recorder {
                batches,
                gate: gated.then_some(gate),
            },
        );
        (thread, seen, go)
    }

    #[tokio::test]
    async fn items_queued_while_the_thread_works_go_out_as_one_batch_in_order() {
        let (thread, seen, go) = recorder(true);
        thread.try_submit(0).unwrap();
        // The thread holds item 0 and waits at the gate; these queue up behind it.
        while !lock(&thread.shared.queue).items.is_empty() {
            std::thread::yield_now();
        }
        for n in 1..=5 {
            thread.try_submit(n).unwrap();
        }
        go.send(()).unwrap();
        assert_eq!(seen.recv().unwrap(), vec![0]);
        assert_eq!(seen.recv().unwrap(), vec![1, 2, 3, 4, 5]);
        assert!(seen.try_recv().is_err(), "one batch for the five");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_without_blocking_and_submit_waits_for_room() {
        let (thread, seen, go) = recorder(true);
        thread.try_submit(100).unwrap();
        while !lock(&thread.shared.queue).items.is_empty() {
            std::thread::yield_now();
        }
        for n in 0..8 {
            thread.try_submit(n).unwrap();
        }
        assert!(matches!(thread.try_submit(8), Err(Refused::Full(8))));
        go.send(()).unwrap();
        thread.submit(8).await.unwrap();
        thread.close();
        let all: Vec<u32> = seen.try_iter().flatten().collect();
        assert_eq!(all, [100, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn close_handles_everything_queued_and_refuses_the_rest() {
        let (thread, seen, go) = recorder(true);
        for n in 0..8 {
            thread.try_submit(n).unwrap();
        }
        go.send(()).unwrap();
        thread.close();
        let all: Vec<u32> = seen.try_iter().flatten().collect();
        assert_eq!(all, (0..8).collect::<Vec<_>>(), "nothing lost on close");
        assert!(matches!(thread.try_submit(9), Err(Refused::Closed(9))));
    }
}
