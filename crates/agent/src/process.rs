//! What the agent does to its own process so that the tokens in its memory stay there.

use std::path::Path;

/// Keeps memory off the disk and away from other processes: no core file (RLIMIT_CORE 0), and
/// on Linux not dumpable, which also bars ptrace and /proc/PID/mem to other processes of the
/// same user and hands /proc/PID's sensitive files to root. The refresh workers call it too:
/// exec makes a process dumpable again.
pub fn harden() -> std::io::Result<()> {
    set_core_limit_zero()?;
    set_not_dumpable()
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn set_core_limit_zero() -> std::io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct passed by reference and keeps no pointer to it.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_not_dumpable() -> std::io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Windows writes no core files; crash dumps are Windows Error Reporting's, which a user
/// enables explicitly.
#[cfg(windows)]
fn set_core_limit_zero() -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_not_dumpable() -> std::io::Result<()> {
    Ok(())
}

/// Leaves the directory it was started in: an agent started by a client inherits the
/// client's working directory, which it would keep busy (an unmountable disk, a directory
/// that cannot be removed) and where a crash could leave files. `/` is always there.
pub fn leave_working_directory() -> std::io::Result<()> {
    std::env::set_current_dir(Path::new("/"))
}

/// The soft limit on open descriptors, if it can be read.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct passed by reference and keeps no pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
    Some(u64::from(limit.rlim_cur))
}

/// Windows has no descriptor limit of this kind (handles are bounded by memory): the caps
/// use the usual Unix default.
#[cfg(windows)]
pub(crate) fn open_files_limit() -> Option<u64> {
    None
}
