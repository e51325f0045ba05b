//! Tests that must run with no other sandbox alive: the ones that time what the agent does
//! under load (the burst) or kill it at random moments (the crash tests). They shared the
//! machine with nothing but their own file's tests when every file was its own binary; in the
//! one binary, the other files' agents would compete for the same cores.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct Counts {
    /// Live sandboxes of tests that do not run alone.
    running: usize,
    /// A test runs alone now.
    alone: bool,
}

static COUNTS: Mutex<Counts> = Mutex::new(Counts {
    running: 0,
    alone: false,
});
static CHANGED: Condvar = Condvar::new();

thread_local! {
    /// This test thread runs alone: its own sandboxes do not wait for it.
    static ALONE_HERE: Cell<bool> = const { Cell::new(false) };
}

fn counts() -> std::sync::MutexGuard<'static, Counts> {
    COUNTS.lock().unwrap_or_else(|err| err.into_inner())
}

fn wait(guard: std::sync::MutexGuard<'static, Counts>) -> std::sync::MutexGuard<'static, Counts> {
    CHANGED.wait(guard).unwrap_or_else(|err| err.into_inner())
}

/// Held by the test that runs alone, from before its first sandbox to its end.
pub struct Alone(());

/// Waits until no other test's sandbox lives, then keeps new ones from starting until the
/// returned guard drops. Call it first thing in the test, before any sandbox exists.
/// Sandboxes waiting for it never hold one already (a test takes this before its sandboxes),
/// so no test waits for itself.
pub fn alone() -> Alone {
    let mut counts = counts();
    while counts.alone || counts.running > 0 {
        counts = wait(counts);
    }
    counts.alone = true;
    ALONE_HERE.with(|here| here.set(true));
    Alone(())
}

impl Drop for Alone {
    fn drop(&mut self) {
        ALONE_HERE.with(|here| here.set(false));
        counts().alone = false;
        CHANGED.notify_all();
    }
}

/// A live sandbox of a test; waits while a test runs alone, unless it is that test's own.
pub struct Running {
    counted: bool,
}

impl Running {
    pub fn start() -> Running {
        if ALONE_HERE.with(Cell::get) {
            return Running { counted: false };
        }
        let mut counts = counts();
        while counts.alone {
            counts = wait(counts);
        }
        counts.running += 1;
        Running { counted: true }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.counted {
            counts().running -= 1;
            CHANGED.notify_all();
        }
    }
}
