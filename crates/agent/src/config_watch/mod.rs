//! The config as the agent last read it, re-read only after the file changed.
//!
//! Why a watch and not a timer: an edit must be seen by the very next request (a user edits
//! the file, then runs `stagepass token`), so "stat at most every N ms" would leave a window
//! in which the old settings are served. Instead an inotify watch (on the file's directory,
//! for the file's name, and on the file itself, which follows a symlinked config to its
//! target) bumps a generation, and a request compares that generation with the cached
//! one: no syscall on the request path. The kernel queues the event before the editor's
//! write returns, so it is ready before any later client connects; the agent's loop is
//! single-threaded and runs woken tasks in the order their events arrived, so the watcher
//! has bumped the generation before the next connection's request is read (the server's
//! tests edit and ask at once, 30 times over). The one exception is a directory flooded with
//! events: the watcher then gives way after a budget of reads, and an edit may take one more
//! turn of the loop to be seen.
//!
//! On macOS the same watch is kqueue's (`kqueue.rs`). Where no watch can be set up (Windows,
//! the directory missing) or the watch ends (the directory removed or renamed), every request
//! checks the file's mtime and size instead, as the agent always did: slower, never stale.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use stagepass_core::config::Config;

pub(crate) struct ConfigCache {
    path: PathBuf,
    /// Bumped by the watcher; `None` when there is none.
    watch: Option<Watched>,
    cached: Mutex<Option<Cached>>,
}

struct Watched {
    state: Arc<WatchState>,
    task: tokio::task::JoinHandle<()>,
    /// A second descriptor of the watch's event queue, polled (never read) by a request: an
    /// event the watcher task has not taken yet means "changed", whatever order the loop
    /// runs its tasks in on a busy machine.
    probe: Option<backend::Probe>,
}

/// What the watcher tells requests.
#[derive(Default)]
struct WatchState {
    generation: AtomicU64,
    /// False once the watch cannot be trusted any more (its directory went away).
    alive: AtomicBool,
}

struct Cached {
    seen: Seen,
    config: Arc<Config>,
}

/// What the cached config was read under.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Seen {
    Generation(u64),
    Stamp(FileStamp),
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl ConfigCache {
    /// Watches `path` when a runtime is there to run the watcher.
    pub(crate) fn new(path: PathBuf) -> ConfigCache {
        let watch = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|_| match backend::Watcher::new(&path) {
                Ok(watcher) => Some(watcher),
                Err(err) => {
                    tracing::info!(
                        "cannot watch {} ({err}); checking it on every request",
                        path.display()
                    );
                    None
                }
            })
            .map(|watcher| {
                let state = Arc::new(WatchState {
                    generation: AtomicU64::new(0),
                    alive: AtomicBool::new(true),
                });
                let probe = watcher.probe();
                let task = tokio::spawn(watcher.run(state.clone()));
                Watched { state, task, probe }
            });
        ConfigCache {
            path,
            watch,
            cached: Mutex::new(None),
        }
    }

    /// The current config; read from disk only after a change.
    pub(crate) fn get(&self) -> stagepass_core::Result<Arc<Config>> {
        let seen = self.seen();
        let mut cached = lock(&self.cached);
        if let (Some(seen), Some(cached)) = (seen, cached.as_ref())
            && cached.seen == seen
        {
            return Ok(cached.config.clone());
        }
        // Errors are not cached: they are rare, and each should name the file as it is now.
        let config = Arc::new(Config::load(&self.path)?);
        if let Some(seen) = seen {
            *cached = Some(Cached {
                seen,
                config: config.clone(),
            });
        }
        Ok(config)
    }

    /// The generation, read before the file so an edit during the read is noticed next
    /// time; without a live watch, the file's stamp (`None`: missing, or an event the
    /// watcher has yet to take: read afresh, never cached).
    fn seen(&self) -> Option<Seen> {
        if let Some(watched) = &self.watch
            && watched.state.alive.load(Ordering::Acquire)
        {
            if watched.probe.as_ref().is_some_and(backend::events_waiting) {
                return None;
            }
            return Some(Seen::Generation(
                watched.state.generation.load(Ordering::Acquire),
            ));
        }
        let meta = std::fs::metadata(&self.path).ok()?;
        Some(Seen::Stamp(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        }))
    }

    #[cfg(test)]
    fn watching(&self) -> bool {
        self.watch
            .as_ref()
            .is_some_and(|watched| watched.state.alive.load(Ordering::Acquire))
    }
}

impl Drop for ConfigCache {
    fn drop(&mut self) {
        if let Some(watched) = &self.watch {
            watched.task.abort();
        }
    }
}

#[cfg(target_os = "linux")]
use self::inotify as backend;
#[cfg(target_os = "macos")]
mod kqueue;
#[cfg(target_os = "macos")]
use self::kqueue as backend;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
use self::none as backend;
use crate::sync::lock;

/// Where there is no watch (Windows) the config's stamp is checked on every request; a
/// `ReadDirectoryChangesW` watcher would slot in here.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod none {
    use std::path::Path;
    use std::sync::Arc;

    use super::WatchState;

    pub(super) enum Watcher {}

    impl Watcher {
        pub(super) fn new(_path: &Path) -> std::io::Result<Watcher> {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "no file watch on this platform",
            ))
        }

        pub(super) async fn run(self, _state: Arc<WatchState>) {
            match self {}
        }

        pub(super) fn probe(&self) -> Option<Probe> {
            match *self {}
        }
    }

    pub(super) type Probe = std::convert::Infallible;

    pub(super) fn events_waiting(never: &Probe) -> bool {
        match *never {}
    }
}

#[cfg(target_os = "linux")]
mod inotify {
    //! The few inotify calls the watch needs, through libc: a crate for this would be a
    //! second event loop and a dozen dependencies.

    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use tokio::io::unix::AsyncFd;

    use super::WatchState;

    /// Changes to a name in the directory: written, replaced, created, removed, re-permitted.
    const NAME_EVENTS: u32 = libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_ATTRIB
        | libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO;
    /// The directory itself going away ends the watch.
    const DIR_EVENTS: u32 = NAME_EVENTS | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
    /// The file (a symlink's target, too): written, re-permitted, replaced or removed.
    const FILE_EVENTS: u32 = libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_ATTRIB
        | libc::IN_DELETE_SELF
        | libc::IN_MOVE_SELF;
    /// `struct inotify_event` without its name.
    const EVENT_HEADER: usize = 16;

    pub(super) struct Watcher {
        fd: AsyncFd<OwnedFd>,
        path: CString,
        name: Vec<u8>,
        dir_wd: i32,
        /// The file's own watch, when the file exists.
        file_wd: Option<i32>,
    }

    impl Watcher {
        pub(super) fn new(path: &Path) -> std::io::Result<Watcher> {
            let absolute = std::path::absolute(path)?;
            let dir = absolute
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            let name = absolute
                .file_name()
                .map(|name| name.as_bytes().to_vec())
                .unwrap_or_default();
            let fd = init()?;
            let dir_wd = add_watch(&fd, &c_path(&dir)?, DIR_EVENTS | libc::IN_ONLYDIR)?;
            let path = c_path(&absolute)?;
            let file_wd = add_watch(&fd, &path, FILE_EVENTS).ok();
            Ok(Watcher {
                fd: register(fd)?,
                path,
                name,
                dir_wd,
                file_wd,
            })
        }

        /// A second descriptor of the event queue, for requests to poll.
        pub(super) fn probe(&self) -> Option<Probe> {
            self.fd.get_ref().try_clone().ok()
        }

        /// Reads events until the watch ends, bumping `state`'s generation for each batch
        /// that concerns the file.
        pub(super) async fn run(mut self, state: Arc<WatchState>) {
            // Room for dozens of events; each holds at most one name of 255 bytes.
            let mut buffer = vec![0u8; 16 << 10];
            loop {
                // `poll_read_ready`, not `readable`: it counts against the task's budget, so
                // a directory that never stops changing (a log written next to the config)
                // cannot starve the loop. Yielding after each read instead would requeue
                // the watcher behind requests the kernel reported after the edit.
                let ready = std::future::poll_fn(|cx| self.fd.poll_read_ready(cx)).await;
                let read = match ready {
                    Ok(mut guard) => match guard.try_io(|fd| read(fd.get_ref(), &mut buffer)) {
                        Ok(read) => read,
                        Err(_would_block) => continue,
                    },
                    Err(err) => Err(err),
                };
                let verdict = match read {
                    Ok(len) => self.judge(&buffer[..len]),
                    Err(err) => {
                        tracing::warn!(
                            "the config watch failed ({err}); checking on every request"
                        );
                        Verdict::Ended
                    }
                };
                match verdict {
                    Verdict::Unrelated => {}
                    Verdict::Changed => {
                        state.generation.fetch_add(1, Ordering::AcqRel);
                        self.follow_file();
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

        /// What a buffer of events means for the config.
        fn judge(&self, mut events: &[u8]) -> Verdict {
            let mut verdict = Verdict::Unrelated;
            while events.len() >= EVENT_HEADER {
                let field = |at: usize| {
                    let mut bytes = [0u8; 4];
                    bytes.copy_from_slice(&events[at..at + 4]);
                    bytes
                };
                let wd = i32::from_ne_bytes(field(0));
                let mask = u32::from_ne_bytes(field(4));
                let len = u32::from_ne_bytes(field(12)) as usize;
                let end = (EVENT_HEADER + len).min(events.len());
                let name = &events[EVENT_HEADER..end];
                let name = &name[..name
                    .iter()
                    .position(|&byte| byte == 0)
                    .unwrap_or(name.len())];
                events = &events[end..];
                if mask & libc::IN_Q_OVERFLOW != 0 {
                    verdict = Verdict::Changed;
                } else if wd == self.dir_wd {
                    if mask & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED) != 0 {
                        return Verdict::Ended;
                    }
                    if name == self.name.as_slice() {
                        verdict = Verdict::Changed;
                    }
                } else if Some(wd) == self.file_wd {
                    verdict = Verdict::Changed;
                }
            }
            verdict
        }

        /// Watches whatever the path names now: a replaced file is a new inode, a symlink
        /// may point elsewhere.
        fn follow_file(&mut self) {
            let now = add_watch(self.fd.get_ref(), &self.path, FILE_EVENTS).ok();
            if let Some(old) = self.file_wd
                && now != Some(old)
            {
                remove_watch(self.fd.get_ref(), old);
            }
            self.file_wd = now;
        }
    }

    enum Verdict {
        Unrelated,
        Changed,
        Ended,
    }

    fn c_path(path: &Path) -> std::io::Result<CString> {
        CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
    }

    /// The probe: the event queue's second descriptor.
    pub(super) type Probe = OwnedFd;

    /// Whether `queue` holds events: one `poll` with no wait, which unlike a `stat` walks no
    /// path. An error counts as "yes": slower, never stale.
    #[allow(unsafe_code)]
    pub(super) fn events_waiting(queue: &Probe) -> bool {
        let mut ready = libc::pollfd {
            fd: queue.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, whose descriptor `queue` keeps open for the call.
        let polled = unsafe { libc::poll(&mut ready, 1, 0) };
        polled != 0
    }

    #[allow(unsafe_code)]
    fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: the descriptor is owned by the `AsyncFd` from here on and closed only when
        // the `AsyncFd` is dropped, after it deregistered it.
        unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)
    }

    #[allow(unsafe_code)]
    fn init() -> std::io::Result<OwnedFd> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    #[allow(unsafe_code)]
    fn add_watch(fd: &OwnedFd, path: &CString, mask: u32) -> std::io::Result<i32> {
        // SAFETY: `path` is a NUL-terminated string that outlives the call; the kernel keeps
        // no pointer to it.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(wd)
    }

    #[allow(unsafe_code)]
    fn remove_watch(fd: &OwnedFd, wd: i32) {
        // SAFETY: plain integers; a watch already gone makes it fail harmlessly.
        unsafe {
            libc::inotify_rm_watch(fd.as_raw_fd(), wd);
        }
    }

    #[allow(unsafe_code)]
    fn read(fd: &OwnedFd, buffer: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: the kernel writes at most `buffer.len()` bytes into `buffer`.
        let read = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if read < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(read as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_config(client_id: &str) -> String {
        format!(
            "[profiles.one]\nissuer = \"https://idp.example.com\"\nclient_id = \"{client_id}\"\n"
        )
    }

    fn client_id(cache: &ConfigCache) -> String {
        cache.get().unwrap().profiles["one"].client_id().to_string()
    }

    /// Lets the watcher task run, as the agent's loop does between an edit and the next
    /// connection's request.
    async fn let_the_loop_turn() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn an_edit_is_seen_by_the_next_request_and_only_an_edit_rereads() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, profile_config("first")).unwrap();
        let cache = ConfigCache::new(path.clone());
        assert!(cache.watching());
        let first = cache.get().unwrap();
        assert!(
            Arc::ptr_eq(&first, &cache.get().unwrap()),
            "no change, no read"
        );
        // Other files in the directory are none of its business.
        std::fs::write(tmp.path().join("other"), "x").unwrap();
        let_the_loop_turn().await;
        assert!(Arc::ptr_eq(&first, &cache.get().unwrap()));

        // Same length: only the content changed.
        std::fs::write(&path, profile_config("secnd")).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "secnd");
        // Replaced by a rename, as editors and `stagepass config` do.
        let temporary = tmp.path().join("config.toml.tmp");
        std::fs::write(&temporary, profile_config("third")).unwrap();
        std::fs::rename(&temporary, &path).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "third");
        // Edited in place after the rename: the new file is watched.
        std::fs::write(&path, profile_config("fourth")).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "fourth");
    }

    #[tokio::test]
    async fn a_symlinked_config_is_followed_to_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let dotfiles = tmp.path().join("dotfiles");
        std::fs::create_dir(&dotfiles).unwrap();
        let target = dotfiles.join("stagepass.toml");
        std::fs::write(&target, profile_config("first")).unwrap();
        let path = tmp.path().join("config.toml");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let cache = ConfigCache::new(path);
        assert_eq!(client_id(&cache), "first");
        std::fs::write(&target, profile_config("second")).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "second");
        // The target replaced by a rename in its own directory.
        let temporary = dotfiles.join("new.toml");
        std::fs::write(&temporary, profile_config("third")).unwrap();
        std::fs::rename(&temporary, &target).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "third");
        std::fs::write(&target, profile_config("fourth")).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "fourth");
    }

    #[tokio::test]
    async fn a_missing_config_is_noticed_once_created_and_a_removed_directory_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("conf");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("config.toml");
        let cache = ConfigCache::new(path.clone());
        assert!(cache.get().is_err(), "no file yet");
        std::fs::write(&path, profile_config("first")).unwrap();
        let_the_loop_turn().await;
        assert_eq!(client_id(&cache), "first");

        std::fs::remove_dir_all(&dir).unwrap();
        let_the_loop_turn().await;
        assert!(!cache.watching(), "the watch ends with its directory");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&path, profile_config("again")).unwrap();
        assert_eq!(client_id(&cache), "again", "checked on every request now");
    }

    #[test]
    fn a_busy_directory_does_not_hide_an_edit_nor_stall_the_loop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, profile_config("first")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let busy = {
            let stop = stop.clone();
            let logs = ["busy.log", "busy.log.1"].map(|name| tmp.path().join(name));
            std::thread::spawn(move || {
                // Two files in turn: the kernel merges only repeats of the same event, so
                // the watcher always finds more to read.
                let mut files = logs.map(|log| std::fs::File::create(log).unwrap());
                while !stop.load(Ordering::Relaxed) {
                    for file in &mut files {
                        std::io::Write::write_all(file, b".").unwrap();
                    }
                }
            })
        };
        // The agent's loop in a thread of its own, so a starved loop fails the test rather
        // than hanging it.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let seen = runtime.block_on(async {
                let cache = ConfigCache::new(path.clone());
                for _ in 0..20 {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                std::fs::write(&path, profile_config("second")).unwrap();
                let_the_loop_turn().await;
                client_id(&cache)
            });
            let _ = done.send(seen);
        });
        let seen = finished.recv_timeout(std::time::Duration::from_secs(20));
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        assert_eq!(
            seen.expect("the watcher starved the loop").as_str(),
            "second"
        );
    }

    #[test]
    fn without_a_runtime_every_request_checks_the_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, profile_config("first")).unwrap();
        let cache = ConfigCache::new(path.clone());
        assert!(!cache.watching());
        assert_eq!(client_id(&cache), "first");
        std::fs::write(&path, profile_config("second!")).unwrap();
        assert_eq!(client_id(&cache), "second!");
    }
}
