//! The agent's one way to take a std mutex.

use std::sync::{Mutex, MutexGuard};

/// Takes `mutex`, poisoned or not: its holders only swap plain values in and out, so a panic
/// elsewhere leaves nothing half-changed, and refusing every later caller would turn one bug
/// into an agent that serves nobody.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
