//! A second local user for the tests that take another user's view of the machine (reading
//! argv, /proc): created with `useradd`, removed on drop.

use std::process::{Command, Output, Stdio};

pub struct LocalUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl LocalUser {
    /// `None` (with a note on stderr) where no user can be created, say when not root; in CI
    /// (`CI=true`) that is a failure, since the tests must run there.
    pub fn create() -> Option<LocalUser> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "spt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let created = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .stdout(Stdio::null())
            .output();
        match created {
            Ok(output) if output.status.success() => {}
            other => {
                let why = match other {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
                    Err(err) => err.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "cannot create a second local user in CI: {why}"
                );
                eprintln!("SKIPPED: this test needs a second local user (useradd: {why})");
                return None;
            }
        }
        let id = |flag: &str| -> u32 {
            let output = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Some(LocalUser { name, uid, gid })
    }

    /// `program args…` run as this user, with no supplementary groups.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--", program])
            .args(args);
        command
    }

    /// Runs a repository script as this user, fed on stdin (the user may not be able to
    /// read the checkout), with `args`.
    pub fn run_script(&self, script: &std::path::Path, args: &[String]) -> Output {
        let mut command = self.command("sh", &["-s", "--"]);
        command
            .args(args)
            .stdin(std::fs::File::open(script).unwrap());
        command.output().unwrap()
    }
}

impl Drop for LocalUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}
