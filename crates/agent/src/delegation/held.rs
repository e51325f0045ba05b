//! The CLIs that hold `exec` delegations ([`super::hold`]), by pid. A process they started
//! (the AI agent, a script, anything it runs in turn) gets nothing from the agent's socket
//! but `status`: no token, no git or docker credential, no browser session, no new
//! delegation. It runs as the developer, so the socket's uid check lets it in; this closes
//! that door for the processes still below the CLI. (A process that leaves the tree, by
//! double-forking to init, escapes it; so does one that reads the proxy key file: an OS
//! sandbox is what stops those.)

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ancestry::{OsProcesses, ProcessTable};
use crate::sync::lock;

/// How far up a process tree is walked: deeper trees are not a shell's.
const MAX_DEPTH: usize = 64;

#[derive(Default)]
pub(crate) struct Held(Mutex<HashMap<i32, String>>);

/// Removes its pid from the held set when the hold ends.
pub(crate) struct Holding<'a> {
    held: &'a Held,
    pid: i32,
}

impl Held {
    pub(crate) fn hold(&self, pid: i32, name: &str) -> Holding<'_> {
        lock(&self.0).insert(pid, name.to_string());
        Holding { held: self, pid }
    }

    /// The delegation `pid` runs under, when a holding CLI is among its ancestors (not
    /// `pid` itself: the CLI's own requests, such as its revoke, are the developer's).
    pub(crate) fn under(&self, pid: i32) -> Option<String> {
        if lock(&self.0).is_empty() {
            return None;
        }
        let mut current = pid;
        for _ in 0..MAX_DEPTH {
            current = OsProcesses.parent(current)?;
            if current <= 1 {
                return None;
            }
            if let Some(name) = lock(&self.0).get(&current) {
                return Some(name.clone());
            }
        }
        None
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        lock(&self.held.0).remove(&self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_of_a_holder_is_under_its_delegation_and_the_holder_is_not() {
        let held = Held::default();
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let child_pid = child.id() as i32;
        assert_eq!(held.under(child_pid), None, "nothing held");
        {
            let _holding = held.hold(me, "claude");
            assert_eq!(held.under(child_pid).as_deref(), Some("claude"));
            assert_eq!(held.under(me), None, "the holder itself is not under it");
        }
        assert_eq!(held.under(child_pid), None, "released with the hold");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
