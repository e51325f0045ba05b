//! Who ran a credential helper: the helper is only a messenger, the program that started it
//! (git, docker, kubectl) is who gets the token. The walk up the process tree is written over
//! a [`ProcessTable`], so it is tested with a fake table on any platform; the real tables read
//! /proc (Linux), `proc_pidinfo`/`proc_pidpath` (macOS) and a Toolhelp snapshot plus
//! `QueryFullProcessImageNameW` (Windows).

/// How far up a helper's ancestry the walk goes: git runs a helper directly or through one
/// shell (`!command` helpers, `sh -c`), `cmd /c` on Windows; a few more hops leave room for
/// wrappers without walking to the session leader.
const MAX_HOPS: usize = 4;

/// Executables that only pass a command on: skipped when naming who ran a helper.
const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "busybox",
    "cmd",
    "powershell",
    "pwsh",
];

/// What the audit needs of the processes of the machine.
pub(crate) trait ProcessTable {
    fn parent(&self, pid: i32) -> Option<i32>;
    fn executable(&self, pid: i32) -> Option<String>;
}

/// The first ancestor of `pid` that is not a shell, with its executable; the direct parent if
/// every ancestor within reach is a shell (a shell is still better than nothing). Stops at the
/// top of the tree (pid 0 or 1), at a loop (pids are reused), and after [`MAX_HOPS`].
pub(crate) fn invoker(table: &dyn ProcessTable, pid: i32) -> Option<(i32, Option<String>)> {
    let mut seen = vec![pid];
    let mut first: Option<(i32, Option<String>)> = None;
    let mut current = pid;
    for _ in 0..MAX_HOPS {
        let parent = table.parent(current).filter(|&parent| parent > 1)?;
        if seen.contains(&parent) {
            break;
        }
        seen.push(parent);
        let exe = table.executable(parent);
        if !exe.as_deref().is_some_and(is_shell) {
            return Some((parent, exe));
        }
        first.get_or_insert((parent, exe));
        current = parent;
    }
    first
}

/// `/bin/sh`, `C:\Windows\System32\cmd.exe`, `/usr/bin/bash (deleted)`.
fn is_shell(exe: &str) -> bool {
    let name = exe.rsplit(['/', '\\']).next().unwrap_or(exe);
    let name = name.split(' ').next().unwrap_or(name);
    let name = name
        .strip_suffix(".exe")
        .or_else(|| name.strip_suffix(".EXE"))
        .unwrap_or(name);
    SHELLS.contains(&name)
}

/// The processes of this machine.
pub(crate) struct OsProcesses;

#[cfg(target_os = "linux")]
impl ProcessTable for OsProcesses {
    /// From /proc/PID/stat. The command name before it may hold spaces and parentheses, so
    /// the fields are read after the last `)`.
    fn parent(&self, pid: i32) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, fields) = stat.rsplit_once(')')?;
        fields.split_whitespace().nth(1)?.parse().ok()
    }

    fn executable(&self, pid: i32) -> Option<String> {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|path| path.display().to_string())
    }
}

#[cfg(target_os = "macos")]
impl ProcessTable for OsProcesses {
    /// `proc_pidinfo(PROC_PIDTBSDINFO)`: the BSD info's `pbi_ppid`.
    #[allow(unsafe_code)]
    fn parent(&self, pid: i32) -> Option<i32> {
        let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        // SAFETY: the buffer is writable for `size` bytes and kept by nobody after the call.
        let written = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDTBSDINFO,
                0,
                info.as_mut_ptr().cast(),
                size,
            )
        };
        if written != size {
            return None;
        }
        // SAFETY: the call filled the whole struct.
        let info = unsafe { info.assume_init() };
        i32::try_from(info.pbi_ppid).ok()
    }

    /// `proc_pidpath`: the executable's path as the kernel knows it.
    #[allow(unsafe_code)]
    fn executable(&self, pid: i32) -> Option<String> {
        let mut buffer = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: the buffer is writable for its length.
        let len =
            unsafe { libc::proc_pidpath(pid, buffer.as_mut_ptr().cast(), buffer.len() as u32) };
        let len = usize::try_from(len).ok().filter(|&len| len > 0)?;
        buffer.truncate(len);
        String::from_utf8(buffer).ok()
    }
}

#[cfg(windows)]
impl ProcessTable for OsProcesses {
    /// From a Toolhelp snapshot: Windows keeps the creator's pid, which may since have been
    /// reused, hence the loop check in [`invoker`].
    #[allow(unsafe_code)]
    fn parent(&self, pid: i32) -> Option<i32> {
        use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
        use windows_sys::Win32::System::Diagnostics::ToolHelp::{
            CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW,
            TH32CS_SNAPPROCESS,
        };
        // SAFETY: a snapshot handle, closed below.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
        if snapshot == INVALID_HANDLE_VALUE {
            return None;
        }
        // SAFETY: PROCESSENTRY32W is plain data; dwSize is set as the API requires.
        let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
        entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
        let mut parent = None;
        // SAFETY: `entry` is valid and sized; the snapshot handle is open.
        let mut more = unsafe { Process32FirstW(snapshot, &mut entry) } != 0;
        while more {
            if entry.th32ProcessID as i32 == pid {
                parent = Some(entry.th32ParentProcessID as i32);
                break;
            }
            // SAFETY: as above.
            more = unsafe { Process32NextW(snapshot, &mut entry) } != 0;
        }
        // SAFETY: opened above, closed once.
        unsafe { CloseHandle(snapshot) };
        parent
    }

    #[allow(unsafe_code)]
    fn executable(&self, pid: i32) -> Option<String> {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Threading::{
            OpenProcess, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
            QueryFullProcessImageNameW,
        };
        // SAFETY: a process handle with the least access that reads the image name; closed
        // below.
        let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid as u32) };
        if process.is_null() {
            return None;
        }
        let mut buffer = vec![0u16; 32_768];
        let mut len = buffer.len() as u32;
        // SAFETY: the buffer holds `len` UTF-16 units; `len` receives the length written.
        let ok = unsafe {
            QueryFullProcessImageNameW(process, PROCESS_NAME_WIN32, buffer.as_mut_ptr(), &mut len)
        };
        // SAFETY: opened above, closed once.
        unsafe { CloseHandle(process) };
        (ok != 0).then(|| String::from_utf16_lossy(&buffer[..len as usize]))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// pid -> (parent, executable).
    struct Fake(HashMap<i32, (i32, &'static str)>);

    impl ProcessTable for Fake {
        fn parent(&self, pid: i32) -> Option<i32> {
            self.0.get(&pid).map(|entry| entry.0)
        }
        fn executable(&self, pid: i32) -> Option<String> {
            self.0.get(&pid).map(|entry| entry.1.to_string())
        }
    }

    fn table(entries: &[(i32, i32, &'static str)]) -> Fake {
        Fake(
            entries
                .iter()
                .map(|&(pid, parent, exe)| (pid, (parent, exe)))
                .collect(),
        )
    }

    #[test]
    fn git_running_the_helper_directly_is_named() {
        let fake = table(&[
            (100, 1, "/usr/lib/systemd/systemd"),
            (200, 100, "/usr/bin/git"),
            (300, 200, "/usr/lib/git-core/git-remote-https"),
            (400, 300, "/usr/bin/stagepass"),
        ]);
        assert_eq!(
            invoker(&fake, 400),
            Some((300, Some("/usr/lib/git-core/git-remote-https".into())))
        );
    }

    #[test]
    fn shells_between_are_skipped_on_unix_and_windows() {
        let unix = table(&[
            (200, 50, "/usr/bin/kubectl"),
            (300, 200, "/bin/sh"),
            (310, 300, "/usr/bin/bash"),
            (400, 310, "/usr/bin/stagepass"),
        ]);
        assert_eq!(
            invoker(&unix, 400),
            Some((200, Some("/usr/bin/kubectl".into())))
        );
        let windows = table(&[
            (200, 50, r"C:\Program Files\Git\mingw64\bin\git.exe"),
            (300, 200, r"C:\Windows\System32\cmd.exe"),
            (400, 300, r"C:\Users\dev\bin\git-credential-stagepass.exe"),
        ]);
        assert_eq!(
            invoker(&windows, 400),
            Some((
                200,
                Some(r"C:\Program Files\Git\mingw64\bin\git.exe".into())
            ))
        );
    }

    #[test]
    fn only_shells_within_reach_name_the_first_one() {
        let fake = table(&[
            (2, 1, "/bin/sh"),
            (3, 2, "/bin/sh"),
            (4, 3, "/bin/sh"),
            (5, 4, "/bin/sh"),
            (6, 5, "/bin/bash"),
            (7, 6, "/usr/bin/stagepass"),
        ]);
        assert_eq!(invoker(&fake, 7), Some((6, Some("/bin/bash".into()))));
    }

    #[test]
    fn the_walk_ends_at_the_top_at_a_loop_and_at_a_gone_process() {
        // Orphaned helper: re-parented to init, which names nobody.
        assert_eq!(invoker(&table(&[(7, 1, "/usr/bin/stagepass")]), 7), None);
        // Windows reuses pids: a parent pid may point back down the chain.
        let looped = table(&[
            (7, 8, "/usr/bin/stagepass"),
            (8, 9, "/bin/sh"),
            (9, 7, "/bin/sh"),
        ]);
        assert_eq!(invoker(&looped, 7), Some((8, Some("/bin/sh".into()))));
        // The parent exited before it was read: its pid is still named.
        assert_eq!(
            invoker(&table(&[(7, 8, "/usr/bin/stagepass")]), 7),
            Some((8, None))
        );
        assert_eq!(invoker(&table(&[]), 7), None);
    }
}
