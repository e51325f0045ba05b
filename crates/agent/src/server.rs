//! The IPC server: the transport's listener (a Unix socket in the private runtime dir, or the
//! user's named pipe), the peer checked, one task per connection.

use std::sync::Arc;
use std::time::Duration;

use stagepass_core::paths;
use stagepass_proto::{
    ErrorKind, FrameError, Hello, PROTOCOL_VERSION, Request, Response, TokenKind, Welcome,
};

use crate::accept::{self, Gate};
use crate::audit::{Caller, RequestEntry, Who, fingerprint};
use crate::transport::{self, PeerIdentity};

use crate::conn::{ConnError, Connection};
#[cfg(unix)]
use crate::delivery::{Delivery, Handoff};
use crate::instance::InstanceLock;
use crate::sessions::Agent;
use crate::{AgentOptions, AgentStartError, Dependencies, errors, handlers};

/// How often the agent checks that its socket is still its own. A removed runtime dir (a
/// finished test, a user cleaning up) or a socket replaced by hand ends the agent instead of
/// leaving it unreachable forever.
const SOCKET_CHECK: Duration = Duration::from_secs(5);

pub(crate) async fn serve(
    options: AgentOptions,
    deps: Dependencies,
) -> Result<(), AgentStartError> {
    let io = |context: String| move |source| AgentStartError::Io { context, source };
    let _lock = InstanceLock::acquire(&options.runtime_dir)?;
    // Refused before anything is written there (audit log, remote keys, refresh locks).
    paths::ensure_data_dir(&options.data_dir)
        .map_err(io(format!("data dir {}", options.data_dir.display())))?;
    let listener = transport::Listener::bind(&options.runtime_dir)
        .map_err(|(context, source)| AgentStartError::Io { context, source })?;
    let mut signals = crate::signals::Signals::new().map_err(io("signal handler".into()))?;
    let mut socket_check = tokio::time::interval(SOCKET_CHECK);

    let agent = Arc::new(Agent::new(options, deps));
    let scheduler = tokio::spawn(crate::scheduler::run(agent.clone()));
    // Before the first client is answered, so `stagepass exec` finds the proxy key.
    crate::proxy::start(&agent).await;
    tracing::info!(
        pid = std::process::id(),
        socket = %listener.address(),
        config = %agent.config_path().display(),
        "agent started"
    );
    let mut gate = Gate::new(accept::Listener::Ipc);
    loop {
        tokio::select! {
            (stream, permit) = gate.accept(|| listener.accept()) => {
                let agent = agent.clone();
                tokio::spawn(async move {
                    handle(agent, stream).await;
                    drop(permit);
                });
            }
            _ = agent.shutdown.notified() => { tracing::info!("stop requested"); break; }
            signal = signals.stop() => { tracing::info!("{signal}"); break; }
            _ = socket_check.tick() => {
                if !listener.still_ours() {
                    tracing::info!("the socket was removed or replaced; stopping");
                    break;
                }
            }
        }
    }
    scheduler.abort();
    crate::proxy::flush(&agent);
    // Everything queued reaches the disk before the socket goes: `agent stop` returns when
    // the socket is gone, and whoever reads the audit log next must find every line.
    agent.delegations.close();
    agent.audit.close();
    listener.close();
    Ok(())
}

async fn handle(agent: Arc<Agent>, stream: transport::Stream) {
    // The socket is 0600 in a 0700 dir (the pipe's DACL admits the user alone); this is the
    // second lock on the door.
    let identity = match transport::peer(&stream) {
        Ok(identity) => identity,
        Err(err) => {
            tracing::warn!("{err}");
            return;
        }
    };
    let mut conn = Connection::new(stream);
    if let Err(err) = converse(&agent, &mut conn, &identity).await
        && !matches!(err, ConnError::Closed)
    {
        tracing::debug!(pid = ?identity.pid, "connection ended: {err}");
    }
}

/// `peer`: the other end, as the transport tells it.
async fn converse(
    agent: &Agent,
    conn: &mut Connection,
    peer: &PeerIdentity,
) -> Result<(), ConnError> {
    let pid = peer.pid;
    let hello: Hello = conn.read().await?;
    let mut caller: Option<Caller> = None;
    conn.queue(&Welcome {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        pid: own_pid(),
    })?;
    if hello.protocol != PROTOCOL_VERSION {
        let mismatch = errors::reply(
            ErrorKind::ProtocolMismatch,
            format!(
                "the running agent (pid {}, version {}) speaks protocol {PROTOCOL_VERSION}, {} speaks {}",
                std::process::id(),
                env!("CARGO_PKG_VERSION"),
                hello.client,
                hello.protocol
            ),
            Some("restart the agent: `stagepass agent stop`, then retry".into()),
        );
        return conn.write(&Response::Error(mismatch)).await;
    }
    // The answer the audit writer is sending, which must leave before the next one.
    #[cfg(unix)]
    let mut in_flight: Option<Handoff> = None;
    loop {
        let request: Request = match conn.read().await {
            Ok(request) => request,
            Err(ConnError::Closed) => return Ok(()),
            Err(err) => return Err(err),
        };
        #[cfg(unix)]
        if let Some(previous) = in_flight.take() {
            caller = Some(previous.sent().await);
        }
        tracing::debug!(client = %hello.client, pid = ?pid, request = request_name(&request), "request");
        let audited = audit_target(&request);
        let response = handlers::dispatch(agent, conn, request, pid).await;
        let frame = answer_frame(conn, &response)?;
        let Some(entry) = audited.and_then(|target| request_entry(agent, target, &response)) else {
            conn.send(&frame).await?;
            if hello.single_request {
                return Ok(());
            }
            continue;
        };
        // Answered only after the line is written (off the loop), so whoever reads the log
        // after the answer finds it. The writer reads /proc for the connection's first
        // audited request (most connections make one, and many, such as status and
        // subscriptions, are never audited); later ones reuse what it found.
        let who = match caller.take() {
            Some(known) => Who::Known(known),
            None => Who::Peer {
                client: hello.client.clone(),
                pid,
                uid: peer.uid,
            },
        };
        // Where the socket can be shared, the writer sends the answer itself right after
        // the line, and this task goes on at once (see `delivery.rs`). A single request's
        // connection ends here: this task closes its copy of the socket now, the writer its
        // own once the answer is out, and the client sees the end right after the answer.
        #[cfg(unix)]
        match conn.duplicate() {
            Ok(socket) => {
                let answer = Delivery { socket, frame };
                in_flight = agent
                    .audit
                    .record_and_deliver(who, entry, agent.now(), answer)
                    .await;
                if in_flight.is_none() || hello.single_request {
                    return Ok(());
                }
                continue;
            }
            Err(err) => tracing::debug!("cannot share a client's socket ({err}); answering here"),
        }
        caller = Some(agent.audit.record_request(who, entry, agent.now()).await);
        conn.send(&frame).await?;
        if hello.single_request {
            return Ok(());
        }
    }
}

/// The answer's bytes. One too large for a frame becomes an error said to the client, which
/// would otherwise see only a dropped connection.
fn answer_frame(conn: &mut Connection, response: &Response) -> Result<Vec<u8>, ConnError> {
    match conn.frame(response) {
        Err(ConnError::Frame(FrameError::TooLarge { len, limit })) => {
            let error = errors::reply(
                ErrorKind::Internal,
                format!(
                    "the agent's answer is {len} bytes, over the {limit} bytes one message may hold"
                ),
                Some("ask for less (one profile, fewer entries)".into()),
            );
            conn.frame(&Response::Error(error))
        }
        framed => framed,
    }
}

/// The agent's pid, read once: glibc asks the kernel on every `getpid`, and every
/// connection's welcome names it.
fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// What to audit of a request: the event, the profile asked for, and for a rejection the
/// fingerprint of the token the server refused.
struct AuditTarget {
    event: &'static str,
    requested: Option<String>,
    rejected: Option<String>,
}

fn audit_target(request: &Request) -> Option<AuditTarget> {
    let (event, requested, rejected) = match request {
        Request::GetToken { profile, .. } => ("token", profile.clone(), None),
        Request::Credential { .. } => ("token", None, None),
        Request::RejectCredential { token, .. } => {
            ("rejected", None, Some(fingerprint(token.expose())))
        }
        Request::Login { profile, .. } => ("sign_in", profile.clone(), None),
        Request::Logout { profile } => ("sign_out", profile.clone(), None),
        // The agent used the token on the user's behalf; it did not hand it out.
        Request::BackstageWhoami { profile } => ("backstage_whoami", profile.clone(), None),
        Request::RemoteGrant(_) => ("remote_grant", None, None),
        Request::RemoteRevoke { .. } => ("remote_revoke", None, None),
        Request::DelegateCreate(_) => ("delegate_create", None, None),
        Request::DelegateRevoke { .. } | Request::DelegateHold { .. } => {
            ("delegate_revoke", None, None)
        }
        // Never the secret: who changed which profile's, and whether it was stored.
        Request::SetClientSecret { profile, secret } => (
            if secret.is_some() {
                "client_secret_set"
            } else {
                "client_secret_deleted"
            },
            Some(profile.clone()),
            None,
        ),
        Request::Status
        | Request::Claims { .. }
        | Request::Subscribe
        | Request::Shutdown
        | Request::ProxyLaunch { .. }
        | Request::RemoteList
        | Request::DelegateList
        // The proxy's side records each decision, with who answered.
        | Request::DelegatePending
        | Request::DelegateAnswer { .. } => {
            return None;
        }
    };
    Some(AuditTarget {
        event,
        requested,
        rejected,
    })
}

/// The line a request's answer is audited with; `None` when nothing was handed out (an
/// unmapped server).
fn request_entry(agent: &Agent, target: AuditTarget, response: &Response) -> Option<RequestEntry> {
    let requested = target.requested.unwrap_or_default();
    // For the lines about a delegation: the same caller (who made or revoked it), and its name.
    let mut delegation = None;
    let (profile, grant, outcome) = match response {
        Response::Token(grant) => (grant.profile.clone(), Some(grant), "ok".into()),
        Response::Credential(Some(credential)) => (
            credential.grant.profile.clone(),
            Some(&credential.grant),
            "ok".into(),
        ),
        Response::Rejected { profile, marked } => (
            profile.clone().unwrap_or(requested),
            None,
            if *marked {
                "refresh before the next hand-out"
            } else {
                "not the current token; ignored"
            }
            .into(),
        ),
        Response::SignedIn(status) => (status.name.clone(), None, "ok".into()),
        Response::SignedOut(report) => (report.profile.clone(), None, "ok".into()),
        Response::BackstageIdentity(identity) => (identity.profile.clone(), None, "ok".into()),
        // The key's name and scope, never the key.
        Response::RemoteGranted(granted) => (
            String::new(),
            None,
            format!(
                "remote key `{}` granted: routes [{}], profiles [{}], until {}",
                granted.info.name,
                granted.info.routes.join(", "),
                granted.info.profiles.join(", "),
                granted.info.expires_at
            ),
        ),
        Response::RemoteKeys(keys) if target.event == "remote_revoke" => (
            String::new(),
            None,
            format!(
                "remote key `{}` revoked",
                keys.first().map_or("", |key| key.name.as_str())
            ),
        ),
        Response::DelegationCreated(created) => {
            let info = &created.info;
            delegation = Some(info.name.clone());
            let note = format!(
                "delegation `{}` created: routes [{}], methods [{}], paths [{}], until {}{}",
                info.name,
                info.routes.join(", "),
                info.methods
                    .as_ref()
                    .map_or("all".into(), |methods| methods.join(", ")),
                info.paths.join(", "),
                info.expires_at,
                info.ask_timeout_secs
                    .map_or(String::new(), |secs| format!(", asks (waits {secs} s)"))
            );
            (String::new(), None, note)
        }
        Response::Delegations(list) if target.event == "delegate_revoke" && !list.is_empty() => {
            let name = list.first().map_or("", |info| info.name.as_str());
            delegation = Some(name.to_string());
            (String::new(), None, format!("delegation `{name}` revoked"))
        }
        Response::ClientSecret(report) => (report.profile.clone(), None, "ok".into()),
        Response::Error(err) => (requested, None, err.message.clone()),
        // An unmapped server: nothing was handed out.
        _ => return None,
    };
    let audience = match grant {
        // The hot path: the grant says whom it is for, so no second look at the config.
        Some(grant) => grant.audience.clone(),
        None => agent
            .config()
            .ok()
            .and_then(|config| Some(config.profiles.get(&profile)?.audience()?.to_string())),
    };
    Some(RequestEntry {
        event: target.event,
        profile,
        audience,
        kind: grant.map(|grant| match grant.kind {
            TokenKind::Access => "access",
            TokenKind::Id => "id",
        }),
        fingerprint: grant
            .map(|grant| fingerprint(grant.token.expose()))
            .or(target.rejected),
        outcome,
        delegation,
    })
}

fn request_name(request: &Request) -> &'static str {
    match request {
        Request::Status => "status",
        Request::GetToken { .. } => "get_token",
        Request::Claims { .. } => "claims",
        Request::Login { .. } => "login",
        Request::Logout { .. } => "logout",
        Request::Subscribe => "subscribe",
        Request::Shutdown => "shutdown",
        Request::Credential { .. } => "credential",
        Request::RejectCredential { .. } => "reject_credential",
        Request::BackstageWhoami { .. } => "backstage_whoami",
        Request::ProxyLaunch { .. } => "proxy_launch",
        Request::RemoteGrant(_) => "remote_grant",
        Request::RemoteList => "remote_list",
        Request::RemoteRevoke { .. } => "remote_revoke",
        Request::DelegateCreate(_) => "delegate_create",
        Request::DelegateList => "delegate_list",
        Request::DelegateRevoke { .. } => "delegate_revoke",
        Request::DelegateHold { .. } => "delegate_hold",
        Request::DelegatePending => "delegate_pending",
        Request::DelegateAnswer { .. } => "delegate_answer",
        Request::SetClientSecret { .. } => "set_client_secret",
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use stagepass_core::clock::SystemClock;
    use stagepass_core::http::{HttpClient, HttpLimits};
    use stagepass_core::store::{LoginStore, MemoryStore};
    use stagepass_proto::{
        AgentError, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, decode, encode, frame_len,
    };

    use super::*;

    fn exchange(socket: &std::path::Path, protocol: u32, request: &Request) -> (Welcome, Response) {
        let mut stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut out = hello(protocol, false);
        out.extend(encode(request, MAX_REQUEST_LEN).unwrap());
        stream.write_all(&out).unwrap();
        let welcome = read_frame(&mut stream);
        (welcome, read_frame(&mut stream))
    }

    fn hello(protocol: u32, single_request: bool) -> Vec<u8> {
        let hello = Hello {
            protocol,
            client: "test".into(),
            single_request,
        };
        encode(&hello, MAX_REQUEST_LEN).unwrap()
    }

    fn read_frame<T: serde::de::DeserializeOwned>(stream: &mut UnixStream) -> T {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).unwrap();
        let mut payload = vec![0u8; frame_len(header, MAX_RESPONSE_LEN).unwrap()];
        stream.read_exact(&mut payload).unwrap();
        decode(&payload).unwrap()
    }

    /// A hand-out of a profile the config lacks: refused, and audited.
    fn asking_for_missing(round: usize) -> Request {
        Request::GetToken {
            profile: Some(format!("missing{round}")),
            kind: TokenKind::Access,
            min_valid_secs: 0,
            interactive: false,
            browser_available: false,
        }
    }

    fn options(dir: &std::path::Path) -> AgentOptions {
        AgentOptions {
            runtime_dir: dir.join("run"),
            config_path: dir.join("config.toml"),
            data_dir: dir.join("data"),
            notifications: false,
        }
    }

    fn deps() -> Dependencies {
        Dependencies {
            http: HttpClient::new(HttpLimits::default()).unwrap(),
            logins: LoginStore::new(Arc::new(MemoryStore::default())),
            clock: Arc::new(SystemClock),
            jitter: Arc::new(stagepass_core::refresh::RandomJitter::default()),
            notifier: Arc::new(crate::notify::Silent),
            refresh_worker: None,
        }
    }

    /// Runs an agent on a thread of its own, as the binary does; its socket once it answers.
    fn start(
        options: &AgentOptions,
    ) -> (
        std::path::PathBuf,
        std::thread::JoinHandle<Result<(), AgentStartError>>,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let agent = {
            let options = options.clone();
            std::thread::spawn(move || runtime.block_on(serve(options, deps())))
        };
        let socket = paths::socket_path(&options.runtime_dir);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while UnixStream::connect(&socket).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        (socket, agent)
    }

    #[test]
    fn an_edit_is_seen_by_the_next_request_and_an_answer_comes_after_its_audit_line() {
        let tmp = tempfile::tempdir().unwrap();
        let options = options(tmp.path());
        let profile = |name: &str| {
            format!("[profiles.{name}]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n")
        };
        std::fs::write(&options.config_path, profile("p0")).unwrap();
        let (socket, agent) = start(&options);
        for round in 1..=30 {
            // Written, then asked at once: no pause for the watcher to catch up.
            std::fs::write(&options.config_path, profile(&format!("p{round}"))).unwrap();
            let Response::Status(report) = exchange(&socket, PROTOCOL_VERSION, &Request::Status).1
            else {
                panic!("expected a status");
            };
            let names: Vec<&str> = report.profiles.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, [format!("p{round}")], "round {round}");

            // A refused hand-out is audited; its line is there when the answer is.
            let (_, response) = exchange(&socket, PROTOCOL_VERSION, &asking_for_missing(round));
            assert!(matches!(response, Response::Error(_)), "{response:?}");
            let audit = std::fs::read_to_string(paths::audit_log_path(&options.data_dir)).unwrap();
            let last: serde_json::Value =
                serde_json::from_str(audit.lines().last().unwrap()).unwrap();
            assert_eq!(last["profile"], format!("missing{round}"), "round {round}");
        }
        let (_, response) = exchange(&socket, PROTOCOL_VERSION, &Request::Shutdown);
        assert_eq!(response, Response::ShuttingDown);
        agent.join().unwrap().unwrap();
    }

    #[test]
    fn requests_sent_at_once_on_one_connection_are_answered_in_order_each_after_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        let options = options(tmp.path());
        std::fs::write(&options.config_path, "").unwrap();
        let (socket, agent) = start(&options);
        let mut stream = UnixStream::connect(&socket).unwrap();
        let mut out = hello(PROTOCOL_VERSION, false);
        // Audited and not: the writer sends the first, this connection the second.
        for round in 0..20 {
            out.extend(encode(&asking_for_missing(round), MAX_REQUEST_LEN).unwrap());
            out.extend(encode(&Request::Status, MAX_REQUEST_LEN).unwrap());
        }
        stream.write_all(&out).unwrap();
        let _welcome: Welcome = read_frame(&mut stream);
        let mut read = || -> Response { read_frame(&mut stream) };
        for round in 0..20 {
            let Response::Error(refused) = read() else {
                panic!("round {round}: expected a refusal");
            };
            assert!(
                refused.message.contains(&format!("missing{round}")),
                "round {round}: {}",
                refused.message
            );
            // Its line is there (later ones may be too: the client asked for all at once).
            let audit = std::fs::read_to_string(paths::audit_log_path(&options.data_dir)).unwrap();
            let lines: Vec<serde_json::Value> = audit
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            assert!(lines.len() > round, "round {round}: {audit}");
            assert_eq!(lines[round]["profile"], format!("missing{round}"));
            assert_eq!(lines[round]["consumer"], "test", "the caller on every line");
            assert!(matches!(read(), Response::Status(_)), "round {round}");
        }
        drop(stream);
        let (_, response) = exchange(&socket, PROTOCOL_VERSION, &Request::Shutdown);
        assert_eq!(response, Response::ShuttingDown);
        agent.join().unwrap().unwrap();
    }

    /// Audited (answered by the writer) and not: the end comes right after the answer, with
    /// no wait for the client to hang up.
    #[test]
    fn a_single_request_connection_ends_after_its_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let options = options(tmp.path());
        std::fs::write(&options.config_path, "").unwrap();
        let (socket, agent) = start(&options);
        for request in [asking_for_missing(0), Request::Status] {
            let mut stream = UnixStream::connect(&socket).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut out = hello(PROTOCOL_VERSION, true);
            out.extend(encode(&request, MAX_REQUEST_LEN).unwrap());
            stream.write_all(&out).unwrap();
            let _welcome: Welcome = read_frame(&mut stream);
            let _answer: Response = read_frame(&mut stream);
            let mut rest = Vec::new();
            let read = stream.read_to_end(&mut rest);
            assert!(
                matches!(read, Ok(0)),
                "{request:?}: the end after the answer, got {read:?}"
            );
        }
        let (_, response) = exchange(&socket, PROTOCOL_VERSION, &Request::Shutdown);
        assert_eq!(response, Response::ShuttingDown);
        agent.join().unwrap().unwrap();
    }

    #[test]
    fn another_protocol_version_gets_a_clear_refusal_and_a_second_agent_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let options = AgentOptions {
            config_path: tmp.path().join("missing.toml"),
            ..options(tmp.path())
        };
        let (socket, agent) = start(&options);

        let (welcome, response) = exchange(&socket, PROTOCOL_VERSION + 1, &Request::Status);
        assert_eq!(welcome.protocol, PROTOCOL_VERSION);
        match response {
            Response::Error(AgentError { kind, hint, .. }) => {
                assert_eq!(kind, ErrorKind::ProtocolMismatch);
                assert!(hint.unwrap().contains("stagepass agent stop"));
            }
            other => panic!("expected a protocol mismatch, got {other:?}"),
        }

        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(serve(options.clone(), deps()));
        assert!(matches!(second, Err(AgentStartError::AlreadyRunning(_))));

        let (_, response) = exchange(&socket, PROTOCOL_VERSION, &Request::Shutdown);
        assert_eq!(response, Response::ShuttingDown);
        agent.join().unwrap().unwrap();
        assert!(!socket.exists(), "a stopping agent removes its socket");
    }

    /// Each connection's task is allocated and moved at its future's size, so a rare
    /// request's large state (a sign-in's is ~13 KB) must be boxed where it is awaited, not
    /// carried by every token request: that copy was a fifth of a cached hand-out's time.
    /// The same goes for the waits a cached hand-out does not make (a refresh, room in the
    /// audit writer's queue): boxed, they took the task from 3.2 KB to 1.9 KB.
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let tmp = tempfile::tempdir().unwrap();
        let agent = Arc::new(Agent::new(options(tmp.path()), deps()));
        let (stream, _client) = tokio::net::UnixStream::pair().unwrap();
        let task = handle(agent, stream);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "a connection's future is {size} bytes");
        drop(task);
    }
}
