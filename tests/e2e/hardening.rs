//! The hardening issue's findings, each against the real binaries: another local user reading
//! argv, idle connections and floods, a failing browser opener, a killed client, the agent's
//! process state and its data dir.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::local_user::LocalUser;
use support::{Idp, Sandbox, repo_root, wait_until};

/// A `$BROWSER` that notes its pid, waits to be let go (so its argv can be inspected while
/// it runs), then hands over to `then` (a real browser) or just exits.
struct GatedBrowser {
    dir: tempfile::TempDir,
}

impl GatedBrowser {
    fn new(then: Option<&Path>) -> GatedBrowser {
        let dir = tempfile::tempdir().unwrap();
        let then = match then {
            Some(browser) => format!("exec '{}' \"$@\"", browser.display()),
            None => "exit 0".into(),
        };
        let script = format!(
            "#!/bin/sh\necho $$ > '{d}/pid.tmp' && mv '{d}/pid.tmp' '{d}/pid'\n\
             i=0; while [ ! -e '{d}/go' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n\
             {then}\n",
            d = dir.path().display()
        );
        let path = dir.path().join("browser");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        GatedBrowser { dir }
    }

    fn command(&self) -> String {
        self.dir.path().join("browser").display().to_string()
    }

    /// The browser's pid, once it runs.
    fn wait_opened(&self) -> u32 {
        let pid = self.dir.path().join("pid");
        wait_until("the browser", Duration::from_secs(20), || pid.exists());
        std::fs::read_to_string(pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn go(&self) {
        std::fs::write(self.dir.path().join("go"), "").unwrap();
    }
}

impl Drop for GatedBrowser {
    fn drop(&mut self) {
        self.go();
    }
}

fn idp_browser() -> PathBuf {
    repo_root().join("tests/idp/browser")
}

fn agent_pid(sandbox: &Sandbox) -> u32 {
    let lock = sandbox.runtime_dir().join("agent.lock");
    std::fs::read_to_string(lock)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn argv(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&byte| byte == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Waits for `child` at most `timeout`; kills it when it takes longer.
fn finish_within(mut child: Child, timeout: Duration, what: &str) -> std::process::Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{what} still ran after {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn spawn(sandbox: &Sandbox, args: &[&str], browser: &str) -> Child {
    sandbox
        .command(args)
        .env("BROWSER", browser)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The other user runs scripts/probe-argv over the processes of a sign-in under way.
fn probe_argv(user: &LocalUser, pids: &[u32]) -> (bool, String) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let output = user.run_script(&repo_root().join("scripts/probe-argv"), &pids);
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn another_user_finds_nothing_in_argv_to_take_over_a_sign_in() {
    let Some(user) = LocalUser::create() else {
        return;
    };
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-argv", &idp.issuer);
    let browser = GatedBrowser::new(Some(&idp_browser()));
    let login = spawn(
        &sandbox,
        &["login", "e2e-argv", "--browser"],
        &browser.command(),
    );
    let browser_pid = browser.wait_opened();
    let pids = [login.id(), browser_pid, agent_pid(&sandbox)];
    let (clean, report) = probe_argv(&user, &pids);
    assert!(clean, "another user found something usable:\n{report}");
    assert!(
        report.contains(&format!("argv {browser_pid}: ")) && report.contains("file://"),
        "the probe saw the browser and the page it was given:\n{report}"
    );
    assert!(
        report.contains("unreadable"),
        "the page is out of the other user's reach:\n{report}"
    );
    // The page works for the user's own browser.
    browser.go();
    let output = finish_within(login, Duration::from_secs(30), "login");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn another_user_finds_no_proxy_launch_url_in_argv() {
    let Some(user) = LocalUser::create() else {
        return;
    };
    let port = support::proxy::free_port();
    let sandbox = Sandbox::with_config(
        "e2e-argv-open",
        &format!(
            "[profiles.e2e-argv-open]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"\n\
             [proxy]\nport = {port}\n\
             [[route]]\nname = \"down\"\npath = \"/down\"\nupstream = \"http://127.0.0.1:9\"\n\
             profile = \"e2e-argv-open\"\nidentity = \"bearer\"\n"
        ),
    );
    let browser = GatedBrowser::new(None);
    let open = spawn(&sandbox, &["open", "down"], &browser.command());
    let browser_pid = browser.wait_opened();
    let (clean, report) = probe_argv(&user, &[open.id(), browser_pid, agent_pid(&sandbox)]);
    assert!(clean, "another user found something usable:\n{report}");
    assert!(
        report.contains(&format!("argv {browser_pid}: ")) && report.contains("file://"),
        "{report}"
    );
    browser.go();
    let output = finish_within(open, Duration::from_secs(10), "open");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The sign-in listener's port, from the redirect page the browser was given (the test is
/// the user, who can read it).
fn loopback_port(browser_pid: u32) -> u16 {
    let page = argv(browser_pid)
        .into_iter()
        .find_map(|arg| arg.strip_prefix("file://").map(str::to_string))
        .expect("the browser was given a file:// page");
    let html = std::fs::read_to_string(page).unwrap();
    let marker = "redirect_uri=http%3A%2F%2F127.0.0.1%3A";
    let start = html.find(marker).expect("a loopback redirect_uri") + marker.len();
    let digits: String = html[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn idle_connections_and_forged_errors_do_not_hold_up_the_sign_in() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-idle", &idp.issuer);
    let browser = GatedBrowser::new(Some(&idp_browser()));
    let login = spawn(
        &sandbox,
        &["login", "e2e-idle", "--browser"],
        &browser.command(),
    );
    let port = loopback_port(browser.wait_opened());
    // What another local user can do with the port (from /proc/net/tcp): connect and say
    // nothing, or answer with an error of their own.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let forged: Vec<TcpStream> = [
        "/callback?error=access_denied",
        "/callback?state=forged&error=access_denied",
    ]
    .iter()
    .map(|target| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        stream
    })
    .collect();
    let started = Instant::now();
    browser.go();
    let output = finish_within(login, Duration::from_secs(20), "login");
    assert!(
        output.status.success(),
        "a forged error ended the sign-in: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the sign-in took {:?} behind 20 idle connections",
        started.elapsed()
    );
    drop((idle, forged));
}

#[test]
fn a_browser_that_cannot_open_ends_the_sign_in_at_once() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-nobrowser", &idp.issuer);
    // Nobody at a terminal: exit 4 at once, with advice and without the URL.
    let token = spawn(&sandbox, &["token"], "false");
    let output = finish_within(token, Duration::from_secs(15), "token with BROWSER=false");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("could not open a browser"), "{stderr}");
    assert!(stderr.contains("$BROWSER"), "{stderr}");
    assert!(
        !stderr.contains("state=") && !stderr.contains(&idp.issuer),
        "the advice carries the URL: {stderr}"
    );

    // At a terminal (script(1) gives it one): where to sign in.
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c"])
        .arg(format!("{} token", env!("CARGO_BIN_EXE_stagepass")))
        .arg("/dev/null")
        .envs(sandbox.envs().iter().map(|(k, v)| (k, v)))
        .env("BROWSER", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut terminal = command.spawn().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let reader = BufReader::new(terminal.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut shown = String::new();
    while !(shown.contains("Could not open a browser") && shown.contains("state=")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => shown.push_str(&format!("{line}\n")),
            Err(_) => break,
        }
    }
    let _ = terminal.kill();
    let _ = terminal.wait();
    assert!(
        shown.contains("Could not open a browser") && shown.contains("state="),
        "on a terminal the URL is shown: {shown}"
    );
}

#[test]
fn a_login_right_after_a_killed_one_starts_afresh() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-relogin", &idp.issuer);
    let browser = GatedBrowser::new(None);
    let mut first = spawn(
        &sandbox,
        &["login", "e2e-relogin", "--browser"],
        &browser.command(),
    );
    browser.wait_opened();
    first.kill().unwrap();
    first.wait().unwrap();
    let second = sandbox.run(&["login", "e2e-relogin", "--browser"]);
    second.assert_ok();
    assert!(
        second.stderr().contains("already under way"),
        "the second login met the first one's sign-in: {}",
        second.stderr()
    );
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_flood_at_the_descriptor_limit_costs_little_and_the_agent_answers_after() {
    let sandbox = Sandbox::new("e2e-flood", "http://127.0.0.1:9");
    // Any request starts the agent.
    sandbox.run(&["status"]);
    let pid = agent_pid(&sandbox);
    let limited = Command::new("prlimit")
        .args([format!("--pid={pid}"), "--nofile=40:40".into()])
        .status()
        .unwrap();
    assert!(limited.success());
    let socket = sandbox.runtime_dir().join("agent.sock");
    let flood: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let log = sandbox.runtime_dir().join("agent.log");
    let cpu_before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_ticks(pid) - cpu_before;
    let log_size = std::fs::metadata(&log).unwrap().len();
    // 300 ticks would be a core spinning; the back-off wakes the agent a few times a second.
    assert!(cpu < 45, "the agent used {cpu} ticks of CPU in 3 s");
    assert!(
        log_size <= stagepass_agent::BoundedLog::CAP,
        "agent.log is {log_size} bytes"
    );
    assert!(
        sandbox.agent_log().contains("retrying with back-off"),
        "{}",
        sandbox.agent_log()
    );
    drop(flood);
    wait_until("the agent to answer again", Duration::from_secs(15), || {
        sandbox.run(&["agent", "status"]).code() == 0
    });
    assert_eq!(agent_pid(&sandbox), pid, "the same agent answers");
}

#[test]
fn the_agent_is_not_dumpable_writes_no_core_and_leaves_its_working_directory() {
    // Observed from outside: for a process of another user, /proc/PID/environ belongs to
    // root only while the process is not dumpable.
    let Some(user) = LocalUser::create() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("sp")
        .tempdir_in("/tmp")
        .unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    for path in [dir.path(), &cwd] {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).unwrap();
    }
    let runtime_dir = dir.path().join("run");
    let mut agent = user
        .command(env!("CARGO_BIN_EXE_stagepass-agent"), &["--background"])
        .current_dir(&cwd)
        .env("STAGEPASS_RUNTIME_DIR", &runtime_dir)
        .env("STAGEPASS_DATA_DIR", dir.path().join("data"))
        .env("STAGEPASS_CONFIG", dir.path().join("config.toml"))
        .env("STAGEPASS_NOTIFY", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = agent.id();
    let socket = runtime_dir.join("agent.sock");
    wait_until("the agent's socket", Duration::from_secs(10), || {
        socket.exists()
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let cwd_seen = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    let environ_owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let _ = agent.kill();
    let _ = agent.wait();

    assert!(
        status.contains(&format!("Uid:\t{}\t", user.uid)),
        "the agent runs as the test user: {status}"
    );
    assert_eq!(cwd_seen, Path::new("/"), "the agent stays in {cwd_seen:?}");
    assert_eq!(environ_owner, 0, "the agent is dumpable");
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );
}

#[test]
fn a_data_dir_others_can_write_is_refused_with_what_to_do() {
    let sandbox = Sandbox::new("e2e-datadir", "http://127.0.0.1:9");
    let data = sandbox.data_dir();
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o775)).unwrap();
    let run = sandbox.run(&["status"]);
    let stderr = run.stderr();
    assert_ne!(run.code(), 0, "{stderr}");
    assert!(
        stderr.contains("writable by other users") && stderr.contains("chmod 700"),
        "{stderr}"
    );
    assert!(stderr.contains("STAGEPASS_DATA_DIR"), "{stderr}");
}
