//! A burst of concurrent token requests that all need a refresh reaches the IdP once.
//!
//! The callers are 1,000 connections driven by one thread, as a load generator such as wrk
//! drives its connections: each caller's latency runs from its connect to its answer. One OS
//! thread per caller would measure the test instead: on two cores, waking 1,000 threads from
//! a barrier alone takes longer than the agent needs to answer them all. The thread starts
//! the callers one after another as fast as it can, looking at its sockets between two, so an
//! answer is read when it comes rather than after every caller has been started.
//!
//! A second burst of 1,000 right after the first asks for the token the first one cached: no
//! refresh, and its latencies are the agent's own. The same burst against the floor, a server
//! that only reads the two frames, writes back the agent's answer as bytes and closes, in the
//! same run, shows what the load generator and the kernel take by themselves.
//!
//! The refresh the first burst waits for is split into its keychain read, IdP call and
//! keychain write as the agent logs it (one `refreshed` line per refresh), so the p99 can be
//! set against the refresh's own duration.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use stagepass_proto::{Hello, PROTOCOL_VERSION, Request, Response, TokenKind, Welcome};
use support::{Idp, Sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const CALLERS: usize = 1000;
/// Rounds of the cached burst and of the floor.
const ROUNDS: usize = 5;

#[test]
fn a_thousand_concurrent_requests_make_exactly_one_refresh() {
    // Timed: no other test's agent competes for the cores.
    let _alone = support::alone();
    // 12 s tokens: the agent's own proactive refresh is due at 8.4-9 s. Between 6 s and
    // 8.4 s, asking for 20 s of validity (capped at half the lifetime) needs a refresh that
    // only the burst can cause. (The schedule and single flight themselves are tested in
    // process, on paused time: `session::tests`.)
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "12")]);
    let mut sandbox = Sandbox::new("e2e-burst", &idp.issuer);
    // As users run it: the tests' debug level writes a log line per request.
    sandbox.set_env("STAGEPASS_LOG", "info");
    sandbox.login_browser();
    let signed_in = Instant::now();
    let first = sandbox.run(&["token", "--min-valid", "0"]);
    first.assert_ok();
    let agent = sandbox.run(&["status", "--json"]).json()["agent"]["pid"]
        .as_u64()
        .map(|pid| u32::try_from(pid).unwrap())
        .expect("the agent's pid");
    std::thread::sleep(Duration::from_millis(6500).saturating_sub(signed_in.elapsed()));
    let calls_before = idp.refresh_calls();

    let socket = sandbox.runtime_dir().join("agent.sock");
    let cpu = CpuTime::start(agent);
    let results = run_burst(&socket);
    let spent = cpu.spent();

    assert_eq!(
        idp.refresh_calls() - calls_before,
        1,
        "one refresh at the IdP"
    );
    let token = &results[0].0;
    assert_ne!(
        token.as_str(),
        first.stdout().trim(),
        "the burst got the refreshed token"
    );
    assert!(
        results.iter().all(|(each, _)| each == token),
        "every caller got the same token"
    );

    report("burst of", 1, &results, spent);
    let refresh = report_refresh(&sandbox.agent_log(), &results);

    // The same request again, at once: the token the burst brought is cached (12 s tokens,
    // 6 s asked for), so no refresh. On two shared cores one burst is one sample of a noisy
    // machine, so the cached burst runs ROUNDS times, each followed by the floor, and
    // scripts/bench takes the medians (all within ~1 s, well before the next refresh is due).
    let answer = agent_answer(&socket);
    for round in 1..=ROUNDS {
        let cpu = CpuTime::start(agent);
        let cached = run_burst(&socket);
        let spent = cpu.spent();
        assert!(
            cached.iter().all(|(each, _)| each == token),
            "every caller got the cached token"
        );
        report("cached burst of", round, &cached, spent);

        let (floored, cpu) = floor_burst(
            &sandbox.runtime_dir().join(format!("floor-{round}")),
            &answer,
            None,
            token,
        );
        report("floor burst of", round, &floored, cpu);
    }
    assert_eq!(
        idp.refresh_calls() - calls_before,
        1,
        "no refresh for a cached token"
    );

    // The floor holding its answers for as long as the refresh took.
    let (floored, cpu) = floor_burst(
        &sandbox.runtime_dir().join("held-floor"),
        &answer,
        Some(refresh),
        token,
    );
    report("floor burst held for the refresh,", 1, &floored, cpu);
    let p99 = p99_ms(&floored);
    let hold = refresh.as_secs_f64() * 1000.0;
    eprintln!(
        "the floor held {hold:.1} ms: p99 {p99:.1} ms = the hold + {:.1} ms",
        p99 - hold
    );
    eprintln!(
        "bench-json {}",
        serde_json::json!({"what": "held floor", "hold_ms": hold, "p99_over_hold_ms": p99 - hold})
    );
}

/// A burst against a new floor at `socket` that answers with `answer`, which holds `token`:
/// the callers' results, and the floor's and the load generator's CPU time.
fn floor_burst(
    socket: &Path,
    answer: &[u8],
    hold: Option<Duration>,
    token: &str,
) -> (Vec<(String, Duration)>, (Duration, Duration)) {
    let floor = Floor::start(socket, answer.to_vec(), hold);
    let load = CpuTime::start(std::process::id());
    let floored = run_burst(&floor.socket);
    let (_, load_cpu) = load.spent();
    assert!(
        floored.iter().all(|(each, _)| each == token),
        "the floor serves the agent's answer"
    );
    (floored, (floor.cpu(), load_cpu))
}

/// The least any server must do per caller: accept, read the hello and the request, write
/// the answer, close. It writes back, byte for byte, an answer the agent gave, from one thread
/// running the same kind of runtime as the agent's loop. Held, it answers nobody until
/// `hold` after its first caller, as the agent answers nobody until the refresh the first
/// caller started is done: what is left over the hold is the least it takes to answer a
/// backlog of callers.
struct Floor {
    socket: std::path::PathBuf,
    /// The server thread's id, and its CPU time when it started.
    thread: (u32, Duration),
}

impl Floor {
    fn start(socket: &Path, answer: Vec<u8>, hold: Option<Duration>) -> Floor {
        let answer = std::sync::Arc::new(answer);
        let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let mut release = None;
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        return;
                    };
                    let answer = answer.clone();
                    let release = *release
                        .get_or_insert_with(|| hold.map(|hold| tokio::time::Instant::now() + hold));
                    tokio::spawn(async move {
                        let _: Hello = read_frame(&mut stream).await;
                        let _: Request = read_frame(&mut stream).await;
                        if let Some(release) = release {
                            tokio::time::sleep_until(release).await;
                        }
                        // A single request's connection: closed after the answer.
                        let _ = stream.write_all(&answer).await;
                    });
                }
            });
        });
        let tid = tid_rx.recv().unwrap();
        Floor {
            socket: socket.to_path_buf(),
            thread: (tid, thread_cpu(format!("/proc/self/task/{tid}/schedstat"))),
        }
    }

    /// The floor server's CPU time since it started.
    fn cpu(&self) -> Duration {
        let (tid, start) = self.thread;
        thread_cpu(format!("/proc/self/task/{tid}/schedstat")).saturating_sub(start)
    }
}

/// This thread's id, as /proc/self/task names it.
fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The agent's welcome and answer to one cached token request, as it wrote them.
fn agent_answer(socket: &Path) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.write_all(&asking()).unwrap();
    let mut answer = Vec::new();
    for _ in 0..2 {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).unwrap();
        let mut payload = vec![
            0u8;
            stagepass_proto::frame_len(header, stagepass_proto::MAX_RESPONSE_LEN)
                .unwrap()
        ];
        stream.read_exact(&mut payload).unwrap();
        answer.extend_from_slice(&header);
        answer.extend_from_slice(&payload);
    }
    answer
}

/// Prints min/p50/p99/max of the callers' latencies, and the CPU time the agent (all its
/// threads) and the load generator spent per request, as text and as one JSON line (ms, µs)
/// for scripts/bench. The CPU times tell the agent's own cost from the machine's: on two
/// shared cores, the latencies also hold the time each waited for a core.
fn report(
    what: &str,
    round: usize,
    results: &[(String, Duration)],
    (agent_cpu, load_cpu): (Duration, Duration),
) {
    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    let [min, p50, p99, max] =
        [0, CALLERS / 2, CALLERS * 99 / 100, CALLERS - 1].map(|rank| latencies[rank]);
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / CALLERS as f64;
    let (agent_us, load_us) = (per_request(agent_cpu), per_request(load_cpu));
    eprintln!(
        "{what} {CALLERS} (round {round}): min {min:?}, p50 {p50:?}, p99 {p99:?}, max {max:?}; CPU per request: \
         agent {agent_us:.1} µs, load generator {load_us:.1} µs"
    );
    let ms = |latency: Duration| latency.as_secs_f64() * 1000.0;
    eprintln!(
        "bench-json {}",
        serde_json::json!({
            "what": what, "round": round, "callers": CALLERS,
            "min_ms": ms(min), "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max),
            "agent_cpu_us_per_request": agent_us, "load_cpu_us_per_request": load_us,
        })
    );
}

/// The refresh the burst waited for, as the agent logged it (its one `refreshed` line): the
/// IdP's and the keychain's time, and the target's check (p99 <= the refresh + 20 ms).
fn report_refresh(log: &str, results: &[(String, Duration)]) -> Duration {
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" refreshed "))
        .collect();
    let [line] = lines.as_slice() else {
        panic!("one `refreshed` line in the agent's log, found {lines:?}");
    };
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    let [total, read, idp, write] = [
        "total_ms",
        "keychain_read_ms",
        "idp_ms",
        "keychain_write_ms",
    ]
    .map(field);
    let p99 = p99_ms(results);
    eprintln!(
        "the refresh: {total:.1} ms as the agent waited for it (keychain read {read:.1} ms, IdP \
         {idp:.1} ms, keychain write {write:.1} ms, the rest a worker's pipe and start); p99 \
         {p99:.1} ms = the refresh + {:.1} ms (target: + 20 ms)",
        p99 - total
    );
    eprintln!(
        "bench-json {}",
        serde_json::json!({
            "what": "refresh", "total_ms": total, "keychain_read_ms": read, "idp_ms": idp,
            "keychain_write_ms": write, "p99_over_refresh_ms": p99 - total,
        })
    );
    Duration::from_secs_f64(total / 1000.0)
}

fn p99_ms(results: &[(String, Duration)]) -> f64 {
    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    latencies[CALLERS * 99 / 100].as_secs_f64() * 1000.0
}

/// CPU time on the clock of the scheduler (`/proc/PID/task/TID/schedstat`, nanoseconds): the
/// agent's threads together, and this test's own (the load generator runs on this thread).
struct CpuTime {
    agent: u32,
    agent_start: Duration,
    load_start: Duration,
}

impl CpuTime {
    fn start(agent: u32) -> CpuTime {
        CpuTime {
            agent,
            agent_start: process_cpu(agent),
            load_start: thread_cpu("/proc/thread-self/schedstat"),
        }
    }

    fn spent(&self) -> (Duration, Duration) {
        (
            process_cpu(self.agent).saturating_sub(self.agent_start),
            thread_cpu("/proc/thread-self/schedstat").saturating_sub(self.load_start),
        )
    }
}

/// Every thread of `pid` (a thread that ended before the second reading is missed, so the
/// agent's short-lived ones are not counted; its loop and I/O threads live on).
fn process_cpu(pid: u32) -> Duration {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|task| thread_cpu(task.path().join("schedstat")))
        .sum()
}

fn thread_cpu(schedstat: impl AsRef<Path>) -> Duration {
    let text = std::fs::read_to_string(schedstat).unwrap_or_default();
    let nanos = text.split(' ').next().and_then(|ns| ns.parse().ok());
    Duration::from_nanos(nanos.unwrap_or(0))
}

/// One burst on a runtime of its own, one thread driving every connection (as wrk does).
fn run_burst(socket: &Path) -> Vec<(String, Duration)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(burst(socket))
}

/// The hello and the token request, as one write.
fn asking() -> Vec<u8> {
    let limit = stagepass_proto::MAX_REQUEST_LEN;
    let mut asking = stagepass_proto::encode(
        // One call per connection, as `stagepass token` and the credential helpers say.
        &Hello {
            protocol: PROTOCOL_VERSION,
            client: "stagepass-test".into(),
            single_request: true,
        },
        limit,
    )
    .unwrap();
    asking.extend(
        stagepass_proto::encode(
            &Request::GetToken {
                profile: None,
                kind: TokenKind::Access,
                min_valid_secs: 20,
                interactive: false,
                browser_available: false,
            },
            limit,
        )
        .unwrap(),
    );
    asking
}

/// Starts the callers one after another; each connects, asks and reads its answer.
async fn burst(socket: &Path) -> Vec<(String, Duration)> {
    let asking = asking();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (socket, asking) = (socket.to_path_buf(), asking.clone());
        callers.spawn(async move {
            let started = Instant::now();
            let mut stream = UnixStream::connect(&socket).await.unwrap();
            stream.write_all(&asking).await.unwrap();
            let _: Welcome = read_frame(&mut stream).await;
            let response: Response = read_frame(&mut stream).await;
            let Response::Token(grant) = response else {
                panic!("not a token: {response:?}");
            };
            (grant.token.expose().clone(), started.elapsed())
        });
        // The runtime looks at its sockets before the next caller starts: the callers
        // answered by then are read now. Without this, each latency held the time this one
        // thread takes to start all 1,000 callers (about 20 ms here, the floor's minimum
        // too), whatever the server did.
        tokio::task::yield_now().await;
    }
    callers.join_all().await
}

async fn read_frame<T: serde::de::DeserializeOwned>(stream: &mut UnixStream) -> T {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.unwrap();
    let mut payload =
        vec![0u8; stagepass_proto::frame_len(header, stagepass_proto::MAX_RESPONSE_LEN).unwrap()];
    stream.read_exact(&mut payload).await.unwrap();
    stagepass_proto::decode(&payload).unwrap()
}
