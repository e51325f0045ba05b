//! A real OpenSSH server on a free loopback port, with a throwaway host key and client key
//! made by `ssh-keygen` in a temp dir, for reverse port forwards (`ssh -R`). Works as root
//! (CI: root logs in with the key) and as any other user (sshd then serves only that user;
//! without PAM it refuses a locked account such as `nobody`, which its VERBOSE log, shown in
//! failures, says).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::proxy::free_port;
use super::wait_until;

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    user: String,
}

impl Sshd {
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "OpenSSH's server is not installed: run scripts/setup (openssh-server)"
        );
        let dir = tempfile::Builder::new().prefix("sshd").tempdir().unwrap();
        for name in ["host_key", "client_key"] {
            let made = Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "stagepass-test",
                    "-f",
                ])
                .arg(dir.path().join(name))
                .status()
                .expect("ssh-keygen (openssh-client) is installed");
            assert!(made.success());
        }
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
                 AuthorizedKeysFile {authorized}\nPidFile none\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AllowTcpForwarding remote\nGatewayPorts no\nX11Forwarding no\nLogLevel VERBOSE\n",
                host_key = dir.path().join("host_key").display(),
                authorized = dir.path().join("authorized_keys").display(),
            ),
        )
        .unwrap();
        if super::current_uid() == 0 {
            // sshd running as root wants its privilege separation dir.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let sshd = Sshd {
            child,
            dir,
            port,
            user,
        };
        wait_until("sshd to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        sshd
    }

    /// `ssh -N -R 127.0.0.1:REMOTE:127.0.0.1:LOCAL` to this server, up once REMOTE accepts
    /// connections; stopped when the returned guard drops.
    pub fn reverse_forward(&self, remote_port: u16, local_port: u16) -> Forward {
        let forward = format!("127.0.0.1:{remote_port}:127.0.0.1:{local_port}");
        let mut child = Command::new("ssh")
            .args(["-F", "/dev/null", "-N", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "ExitOnForwardFailure=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "LogLevel=ERROR", "-i"])
            .arg(self.dir.path().join("client_key"))
            .args(["-p", &self.port.to_string(), "-R", &forward])
            .arg(format!("{}@127.0.0.1", self.user))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh (openssh-client) is installed");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", remote_port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("ssh -R ended ({status}): {stderr}\nsshd: {}", self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the forward did not come up; sshd: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Forward(child)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `ssh -R`, ended on drop.
pub struct Forward(Child);

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
