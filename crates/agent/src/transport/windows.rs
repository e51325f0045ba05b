//! The named-pipe transport (Windows): `\\.\pipe\stagepass-<SID>`, created with a security
//! descriptor that admits the user's SID alone, refusing remote clients, and as the first
//! instance of its name so that a pipe squatted by another process makes the agent fail
//! instead of sharing the name.
//!
//! <https://learn.microsoft.com/en-us/windows/win32/ipc/named-pipe-security-and-access-rights>

use std::ffi::c_void;
use std::io;
use std::os::windows::io::AsRawHandle;

use stagepass_core::endpoint::{self, Endpoint};
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use tokio::sync::Mutex;
use windows_sys::Win32::Foundation::{HLOCAL, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;

use super::{PeerError, PeerIdentity};

pub(crate) type Stream = NamedPipeServer;

/// A security descriptor parsed from SDDL, freed on drop.
struct Descriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is immutable once built and only read by CreateNamedPipeW.
#[allow(unsafe_code)]
unsafe impl Send for Descriptor {}
// SAFETY: as above: shared reads of an immutable buffer.
#[allow(unsafe_code)]
unsafe impl Sync for Descriptor {}

impl Descriptor {
    #[allow(unsafe_code)]
    fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        let wide: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `wide` is NUL-terminated; the descriptor is LocalAlloc'd and freed in Drop.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Descriptor(descriptor))
    }
}

impl Drop for Descriptor {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW, freed once.
        unsafe { LocalFree(self.0 as HLOCAL) };
    }
}

pub(crate) struct Listener {
    name: String,
    descriptor: Descriptor,
    /// The instance the next client connects to; replaced by a fresh one at each accept, so
    /// there is always one waiting.
    next: Mutex<NamedPipeServer>,
}

impl Listener {
    pub(crate) fn bind(runtime_dir: &std::path::Path) -> Result<Listener, (String, io::Error)> {
        fn context(what: &'static str) -> impl Fn(io::Error) -> (String, io::Error) {
            move |err| (what.to_string(), err)
        }
        let sid = endpoint::windows::current_user_sid().map_err(context("cannot read your SID"))?;
        let name = match endpoint::endpoint(runtime_dir).map_err(context("no pipe name"))? {
            Endpoint::Pipe(name) => name,
            Endpoint::Socket(path) => path.display().to_string(),
        };
        let descriptor = Descriptor::from_sddl(&endpoint::pipe_sddl(&sid))
            .map_err(context("cannot build the pipe's security descriptor"))?;
        let first = create(&name, &descriptor, true).map_err(|err| {
            (
                format!("cannot create the pipe {name} (is it squatted?)"),
                err,
            )
        })?;
        Ok(Listener {
            name,
            descriptor,
            next: Mutex::new(first),
        })
    }

    pub(crate) fn address(&self) -> String {
        self.name.clone()
    }

    /// Waits for a client on the waiting instance, then puts a fresh one in its place.
    /// Cancel-safe: `connect` is, and the instance stays in place until a client came.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, ())> {
        let mut next = self.next.lock().await;
        next.connect().await?;
        let fresh = create(&self.name, &self.descriptor, false)?;
        Ok((std::mem::replace(&mut *next, fresh), ()))
    }

    /// A pipe vanishes with its last handle, which the agent holds: nobody can remove it.
    pub(crate) fn still_ours(&self) -> bool {
        true
    }

    pub(crate) fn close(self) {}
}

#[allow(unsafe_code)]
fn create(name: &str, descriptor: &Descriptor, first: bool) -> io::Result<NamedPipeServer> {
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    // SAFETY: `attributes` and the descriptor it points to outlive the call, which copies
    // them into the new pipe object.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(
                name,
                (&mut attributes as *mut SECURITY_ATTRIBUTES).cast::<c_void>(),
            )
    }
}

/// The client's pid. Who it runs as was settled when it opened the pipe: the DACL lets no
/// other user's process open it.
#[allow(unsafe_code)]
pub(crate) fn peer(stream: &Stream) -> Result<PeerIdentity, PeerError> {
    let mut pid = 0u32;
    // SAFETY: the handle is the connected server end, valid while `stream` lives.
    let ok = unsafe { GetNamedPipeClientProcessId(stream.as_raw_handle(), &mut pid) };
    Ok(PeerIdentity {
        pid: (ok != 0).then_some(pid as i32),
        uid: None,
    })
}
