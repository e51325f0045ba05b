//! The config watch on macOS: kqueue's vnode filter, through libc, on the config's directory
//! (an entry created, removed or renamed: an editor's save-by-rename, the file appearing or
//! going) and on the file itself, opened through a symlink to its target (written, extended,
//! re-permitted, removed, renamed). Each event bumps the generation; the kqueue descriptor is
//! itself pollable, so tokio's own kqueue wakes the watcher.
//!
//! <https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/man2/kqueue.2.html>
//!
//! A directory's `NOTE_WRITE` does not say which entry changed: any entry change in the
//! directory counts, which costs a re-read of the config, never a stale one.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::unix::AsyncFd;

use super::WatchState;

/// The directory's entries changed, or the directory itself went away.
const DIR_NOTES: u32 = libc::NOTE_WRITE | libc::NOTE_DELETE | libc::NOTE_RENAME | libc::NOTE_REVOKE;
/// The file was written, re-permitted, replaced or removed.
const FILE_NOTES: u32 = libc::NOTE_WRITE
    | libc::NOTE_EXTEND
    | libc::NOTE_ATTRIB
    | libc::NOTE_DELETE
    | libc::NOTE_RENAME
    | libc::NOTE_REVOKE;
/// The directory is gone or moved: the watch no longer means the configured path.
const DIR_ENDED: u32 = libc::NOTE_DELETE | libc::NOTE_RENAME | libc::NOTE_REVOKE;

pub(super) type Probe = std::convert::Infallible;

pub(super) fn events_waiting(never: &Probe) -> bool {
    match *never {}
}

pub(super) struct Watcher {
    queue: AsyncFd<OwnedFd>,
    path: CString,
    dir: OwnedFd,
    /// The file's own descriptor, when the file exists; closing it removes its event.
    file: Option<OwnedFd>,
}

impl Watcher {
    pub(super) fn new(path: &Path) -> std::io::Result<Watcher> {
        let absolute = std::path::absolute(path)?;
        let dir = absolute
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let queue = new_queue()?;
        let dir = open_for_events(&c_path(&dir)?)?;
        watch(&queue, &dir, DIR_NOTES)?;
        let path = c_path(&absolute)?;
        let file = open_for_events(&path).ok();
        if let Some(file) = &file {
            watch(&queue, file, FILE_NOTES)?;
        }
        Ok(Watcher {
            queue: register(queue)?,
            path,
            dir,
            file,
        })
    }

    /// Reads events until the watch ends, bumping `state`'s generation for each batch that
    /// concerns the config.
    /// No probe yet: kqueue's ordering on a busy loop is unmeasured here (no Mac), so a
    /// request trusts the generation alone, as on Linux before the probe.
    pub(super) fn probe(&self) -> Option<Probe> {
        None
    }

    pub(super) async fn run(mut self, state: Arc<WatchState>) {
        loop {
            // As on Linux: `poll_read_ready` counts against the task's budget.
            let ready = std::future::poll_fn(|cx| self.queue.poll_read_ready(cx)).await;
            let read = match ready {
                Ok(mut guard) => match guard.try_io(|queue| pending(queue.get_ref())) {
                    Ok(read) => read,
                    Err(_would_block) => continue,
                },
                Err(err) => Err(err),
            };
            let verdict = match read {
                Ok(events) => self.judge(&events),
                Err(err) => {
                    tracing::warn!("the config watch failed ({err}); checking on every request");
                    Verdict::Ended
                }
            };
            match verdict {
                Verdict::Changed => {
                    state.generation.fetch_add(1, Ordering::AcqRel);
                    if let Err(err) = self.follow_file() {
                        tracing::warn!(
                            "the config watch failed ({err}); checking on every request"
                        );
                        state.alive.store(false, Ordering::Release);
                        state.generation.fetch_add(1, Ordering::AcqRel);
                        return;
                    }
                }
                Verdict::Ended => {
                    // Order matters: a request that sees the watch dead checks the file.
                    state.alive.store(false, Ordering::Release);
                    state.generation.fetch_add(1, Ordering::AcqRel);
                    return;
                }
            }
        }
    }

    /// What a batch of events means for the config: every event here is about the
    /// directory or the file.
    fn judge(&self, events: &[Event]) -> Verdict {
        let dir = self.dir.as_raw_fd() as usize;
        let ended = events.iter().any(|event| {
            event.flags & libc::EV_ERROR != 0
                || (event.ident == dir && event.fflags & DIR_ENDED != 0)
        });
        if ended {
            Verdict::Ended
        } else {
            Verdict::Changed
        }
    }

    /// Watches whatever the path names now: a replaced file is a new vnode, a symlink may
    /// point elsewhere. The old descriptor is closed after the new one is watched, so the
    /// numbers cannot be confused.
    fn follow_file(&mut self) -> std::io::Result<()> {
        let now = open_for_events(&self.path).ok();
        if let Some(file) = &now {
            watch(self.queue.get_ref(), file, FILE_NOTES)?;
        }
        self.file = now;
        Ok(())
    }
}

enum Verdict {
    Changed,
    Ended,
}

/// What a `kevent` says, without its pointer (the watcher's future must be `Send`).
struct Event {
    ident: usize,
    flags: u16,
    fflags: u32,
}

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

fn empty_event() -> libc::kevent {
    libc::kevent {
        ident: 0,
        filter: 0,
        flags: 0,
        fflags: 0,
        data: 0,
        udata: std::ptr::null_mut(),
    }
}

#[allow(unsafe_code)]
fn register(queue: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the descriptor is owned by the `AsyncFd` from here on and closed only when the
    // `AsyncFd` is dropped, after it deregistered it.
    unsafe { AsyncFd::register(queue) }.map_err(std::io::Error::from)
}

#[allow(unsafe_code)]
fn new_queue() -> std::io::Result<OwnedFd> {
    // SAFETY: kqueue takes no arguments and returns a new descriptor or -1; kqueues are not
    // inherited by children.
    let fd = unsafe { libc::kqueue() };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A descriptor for events only (`O_EVTONLY`: it does not keep a volume from unmounting).
#[allow(unsafe_code)]
fn open_for_events(path: &CString) -> std::io::Result<OwnedFd> {
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_EVTONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds (or updates) the vnode event for `fd`, edge-triggered (`EV_CLEAR`).
#[allow(unsafe_code)]
fn watch(queue: &OwnedFd, fd: &OwnedFd, notes: u32) -> std::io::Result<()> {
    let change = libc::kevent {
        ident: fd.as_raw_fd() as usize,
        filter: libc::EVFILT_VNODE,
        flags: libc::EV_ADD | libc::EV_CLEAR,
        fflags: notes,
        data: 0,
        udata: std::ptr::null_mut(),
    };
    // SAFETY: one valid change and no event list; a zero timeout is not needed without one.
    let done = unsafe {
        libc::kevent(
            queue.as_raw_fd(),
            &change,
            1,
            std::ptr::null_mut(),
            0,
            std::ptr::null(),
        )
    };
    if done < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The events pending now, without waiting; `WouldBlock` when there are none, so that tokio
/// clears the readiness.
#[allow(unsafe_code)]
fn pending(queue: &OwnedFd) -> std::io::Result<Vec<Event>> {
    let mut events = [empty_event(); 16];
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let room = i32::try_from(events.len()).unwrap_or(i32::MAX);
    // SAFETY: the kernel writes at most `room` events into `events`; no changes are passed.
    let count = unsafe {
        libc::kevent(
            queue.as_raw_fd(),
            std::ptr::null(),
            0,
            events.as_mut_ptr(),
            room,
            &now,
        )
    };
    match count {
        ..0 => Err(std::io::Error::last_os_error()),
        0 => Err(std::io::ErrorKind::WouldBlock.into()),
        count => Ok(events
            .iter()
            .take(count as usize)
            .map(|event| Event {
                ident: event.ident,
                flags: event.flags,
                fflags: event.fflags,
            })
            .collect()),
    }
}
