//! Where the agent listens, per platform: a Unix socket in the private runtime dir on Linux
//! and macOS, a named pipe named after the user's SID on Windows. The names and the pipe's
//! security descriptor are plain strings, built here so they are unit-tested on every
//! platform; only the Windows calls that look up the SID are Windows-only.

use std::path::{Path, PathBuf};

/// The agent's address: what the agent binds and what clients connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket file (0600 in a 0700 dir).
    Socket(PathBuf),
    /// A Windows named pipe path, `\\.\pipe\stagepass-<SID>[-<instance>]`.
    Pipe(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Pipe(name) => f.write_str(name),
        }
    }
}

/// The named pipe of the user with SID `sid`. Pipes live in one machine-wide namespace, so the
/// SID makes the name per user; `instance` (a hash of a non-default runtime dir) lets tests
/// and users run isolated agents side by side, as the runtime dir does on Unix.
///
/// <https://learn.microsoft.com/en-us/windows/win32/ipc/pipe-names>
pub fn pipe_name(sid: &str, instance: Option<&str>) -> String {
    match instance {
        Some(instance) => format!(r"\\.\pipe\stagepass-{sid}-{instance}"),
        None => format!(r"\\.\pipe\stagepass-{sid}"),
    }
}

/// The pipe's security descriptor in SDDL: protected DACL (`P`, no inherited entries) with one
/// entry granting generic all (`GA`) to the user's SID and nothing to anyone else, not even
/// Administrators or SYSTEM; the owner is the user. Remote clients are refused separately
/// (`PIPE_REJECT_REMOTE_CLIENTS`).
///
/// <https://learn.microsoft.com/en-us/windows/win32/secauthz/security-descriptor-string-format>
pub fn pipe_sddl(sid: &str) -> String {
    format!("O:{sid}D:P(A;;GA;;;{sid})")
}

/// Whether `sid` has the shape of a string SID (`S-1-<authority>-<sub>...`): the SID goes into
/// a pipe name and an SDDL string, where a stray `;`, `)` or `\` would change their meaning.
pub fn is_string_sid(sid: &str) -> bool {
    let mut parts = sid.split('-');
    parts.next() == Some("S") && parts.next() == Some("1") && {
        let rest: Vec<&str> = parts.collect();
        rest.len() >= 2
            && rest
                .iter()
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// A short, stable tag for a runtime dir other than the default one (FNV-1a, 64 bits, hex):
/// not a secret and not a defence (the pipe's DACL is), only a way to keep two agents apart.
pub fn instance_tag(runtime_dir: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in runtime_dir.to_string_lossy().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The endpoint of the agent whose runtime dir is `runtime_dir`.
#[cfg(unix)]
pub fn endpoint(runtime_dir: &Path) -> std::io::Result<Endpoint> {
    Ok(Endpoint::Socket(crate::paths::socket_path(runtime_dir)))
}

/// The endpoint of the agent whose runtime dir is `runtime_dir`: the user's pipe, with an
/// instance tag when the runtime dir is not the default one.
#[cfg(windows)]
pub fn endpoint(runtime_dir: &Path) -> std::io::Result<Endpoint> {
    let sid = windows::current_user_sid()?;
    let instance =
        (runtime_dir != crate::paths::default_runtime_dir()).then(|| instance_tag(runtime_dir));
    Ok(Endpoint::Pipe(pipe_name(&sid, instance.as_deref())))
}

#[cfg(windows)]
pub mod windows {
    //! The current user's SID from the process token.

    use std::io;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, HLOCAL, LocalFree};
    use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
    use windows_sys::Win32::Security::{
        GetTokenInformation, PSID, TOKEN_QUERY, TOKEN_USER, TokenUser,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// The string SID of the user this process runs as (`S-1-5-21-…`).
    #[allow(unsafe_code)]
    pub fn current_user_sid() -> io::Result<String> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: the pseudo handle of the current process needs no closing; `token` receives
        // a handle that is closed below.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let result = token_user_sid(token);
        // SAFETY: `token` was opened above and is closed once.
        unsafe { CloseHandle(token) };
        result
    }

    #[allow(unsafe_code)]
    fn token_user_sid(token: HANDLE) -> io::Result<String> {
        // TOKEN_USER plus its SID: 44 bytes at most for a SID, so 256 is ample; u64 items
        // keep the buffer aligned for the struct.
        let mut buffer = [0u64; 32];
        let mut needed = 0u32;
        // SAFETY: the buffer is writable for the size passed; `needed` is a valid out pointer.
        let ok = unsafe {
            GetTokenInformation(
                token,
                TokenUser,
                buffer.as_mut_ptr().cast(),
                std::mem::size_of_val(&buffer) as u32,
                &mut needed,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success the buffer starts with a TOKEN_USER whose SID points inside it.
        let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        // SAFETY: `sid` points into `buffer`, which lives until the end of this function.
        unsafe { sid_string(sid) }
    }

    /// A SID as its string form (`S-1-5-21-…`).
    ///
    /// # Safety
    /// `sid` must point to a valid SID for the duration of the call.
    #[allow(unsafe_code)]
    pub unsafe fn sid_string(sid: PSID) -> io::Result<String> {
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: `sid` is valid while `buffer` lives; `text` receives a LocalAlloc'd string.
        if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `text` is NUL-terminated; it is read up to the NUL and then freed once.
        let sid = unsafe {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            let sid = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            LocalFree(text as HLOCAL);
            sid
        };
        if super::is_string_sid(&sid) {
            Ok(sid)
        } else {
            Err(io::Error::other(format!("unexpected SID format: {sid}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "S-1-5-21-3623811015-3361044348-30300820-1013";

    #[test]
    fn the_pipe_is_named_after_the_sid_and_the_instance() {
        assert_eq!(
            pipe_name(SID, None),
            r"\\.\pipe\stagepass-S-1-5-21-3623811015-3361044348-30300820-1013"
        );
        let tag = instance_tag(Path::new(r"C:\Users\dev\AppData\Local\Temp\t1"));
        assert_eq!(tag.len(), 16);
        assert_ne!(
            tag,
            instance_tag(Path::new(r"C:\Users\dev\AppData\Local\Temp\t2"))
        );
        assert_eq!(
            pipe_name(SID, Some(&tag)),
            format!(r"\\.\pipe\stagepass-{SID}-{tag}")
        );
    }

    #[test]
    fn the_descriptor_admits_the_user_alone_with_a_protected_dacl() {
        assert_eq!(
            pipe_sddl(SID),
            "O:S-1-5-21-3623811015-3361044348-30300820-1013\
             D:P(A;;GA;;;S-1-5-21-3623811015-3361044348-30300820-1013)"
        );
        // One allow entry, no Everyone (WD), no Administrators (BA), no inheritance.
        let sddl = pipe_sddl(SID);
        assert_eq!(sddl.matches("(A;").count(), 1);
        for other in [";WD)", ";BA)", ";SY)", "AI", "OICI"] {
            assert!(!sddl.contains(other), "{other} in {sddl}");
        }
    }

    #[test]
    fn only_well_formed_sids_pass() {
        assert!(is_string_sid(SID));
        assert!(is_string_sid("S-1-5-18"));
        for bad in [
            "",
            "S-1-5",
            "S-1-5-21-1)(A;;GA;;;WD",
            "S-1-5-x",
            "s-1-5-18",
            "S-2-5-18",
        ] {
            assert!(!is_string_sid(bad), "{bad}");
        }
    }
}
