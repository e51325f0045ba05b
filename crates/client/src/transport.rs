//! The client's end of the agent's transport (see the agent's `transport` module): a Unix
//! socket on Linux and macOS, the user's named pipe on Windows. Blocking, like the client.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use stagepass_core::endpoint::{self, Endpoint};

/// A connection to the agent.
#[derive(Debug)]
pub(crate) struct Stream {
    #[cfg(unix)]
    inner: std::os::unix::net::UnixStream,
    #[cfg(windows)]
    inner: std::fs::File,
}

/// Whether an error of [`connect`] means that no agent listens.
pub(crate) fn no_agent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Connects to the agent of `runtime_dir`.
pub(crate) fn connect(runtime_dir: &Path) -> io::Result<Stream> {
    match endpoint::endpoint(runtime_dir)? {
        #[cfg(unix)]
        Endpoint::Socket(path) => Ok(Stream {
            inner: std::os::unix::net::UnixStream::connect(path)?,
        }),
        #[cfg(windows)]
        Endpoint::Pipe(name) => windows::open(&name).map(|inner| Stream { inner }),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{other} is not an endpoint of this platform"),
        )),
    }
}

impl Stream {
    /// A second handle on the same connection.
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            inner: self.inner.try_clone()?,
        })
    }

    /// Ends the connection both ways: a blocked read returns, the agent sees the close.
    #[cfg(unix)]
    pub(crate) fn shutdown(&self) {
        let _ = self.inner.shutdown(std::net::Shutdown::Both);
    }

    /// Ends the connection: the pipe is disconnected for both ends (a blocked read of ours
    /// returns with an error, the agent sees the close).
    #[cfg(windows)]
    pub(crate) fn shutdown(&self) {
        windows::cancel(&self.inner);
    }

    #[cfg(unix)]
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    #[cfg(unix)]
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }

    /// A synchronous pipe handle has no timeout of its own; the agent bounds every exchange
    /// on its side (`conn`'s timeouts), and a dead agent breaks the pipe.
    #[cfg(windows)]
    pub(crate) fn set_read_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    #[cfg(windows)]
    pub(crate) fn set_write_timeout(&self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            // A pipe whose server end closed reads as "broken pipe"; a socket reads 0 bytes.
            Err(err) if cfg!(windows) && err.kind() == io::ErrorKind::BrokenPipe => Ok(0),
            other => other,
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(windows)]
mod windows {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::fs::OpenOptionsExt;
    use std::os::windows::io::AsRawHandle;
    use std::time::{Duration, Instant};

    use windows_sys::Win32::Foundation::ERROR_PIPE_BUSY;
    use windows_sys::Win32::Storage::FileSystem::{SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT};
    use windows_sys::Win32::System::IO::CancelIoEx;

    /// All instances busy is a moment's state (the agent makes a new one per accept).
    const BUSY_WAIT: Duration = Duration::from_secs(2);

    /// Opens the pipe for reading and writing, and talks to it only if it belongs to us: a
    /// pipe of that name created by someone else first (squatting) would otherwise receive our
    /// requests, tokens included. Identification-level impersonation only: the agent may learn
    /// who we are but never act as us.
    pub(super) fn open(name: &str) -> io::Result<File> {
        let file = open_any(name)?;
        let owner = owner_sid(&file)?;
        let me = stagepass_core::endpoint::windows::current_user_sid()?;
        if owner != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{name} belongs to {owner}, not to you ({me}): not an agent of yours"),
            ));
        }
        Ok(file)
    }

    /// The owner of the pipe's server end, from its security descriptor.
    #[allow(unsafe_code)]
    fn owner_sid(file: &File) -> io::Result<String> {
        use windows_sys::Win32::Foundation::{HLOCAL, LocalFree};
        use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
        use windows_sys::Win32::Security::{
            OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
        };
        let mut owner: PSID = std::ptr::null_mut();
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: the handle is open; `owner` points into `descriptor`, freed below.
        let status = unsafe {
            GetSecurityInfo(
                file.as_raw_handle(),
                SE_KERNEL_OBJECT,
                OWNER_SECURITY_INFORMATION,
                &mut owner,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut descriptor,
            )
        };
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        // SAFETY: `owner` is valid while `descriptor` lives.
        let sid = unsafe { stagepass_core::endpoint::windows::sid_string(owner) };
        // SAFETY: allocated by GetSecurityInfo, freed once.
        unsafe { LocalFree(descriptor as HLOCAL) };
        sid
    }

    fn open_any(name: &str) -> io::Result<File> {
        let deadline = Instant::now() + BUSY_WAIT;
        loop {
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .security_qos_flags(SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION)
                .open(name);
            match opened {
                Err(err)
                    if err.raw_os_error() == Some(ERROR_PIPE_BUSY as i32)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    /// Cancels whatever I/O is pending on the handle, from another thread.
    #[allow(unsafe_code)]
    pub(super) fn cancel(file: &File) {
        // SAFETY: the handle is open while `file` lives; a null OVERLAPPED cancels all.
        unsafe { CancelIoEx(file.as_raw_handle(), std::ptr::null()) };
    }
}
