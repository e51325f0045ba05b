//! A burst of concurrent token requests that all need a refresh reaches the IdP once.
//!
//! The callers are 1,000 connections driven by one thread, as a load generator such as wrk
//! drives its connections: each caller's latency runs from its connect to its answer. One OS
//! thread per caller would measure the test instead: on two cores, waking 1,000 threads from
//! a barrier alone takes longer than the agent needs to answer them all.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use stagepass_proto::{Hello, PROTOCOL_VERSION, Request, Response, TokenKind, Welcome};
use support::{Idp, Sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const CALLERS: usize = 1000;

#[test]
fn a_thousand_concurrent_requests_make_exactly_one_refresh() {
    // 20 s tokens: the agent's own proactive refresh is due at 15-16 s. Between 10 s and
    // 15 s, asking for 20 s of validity (capped at half the lifetime) needs a refresh that
    // only the burst can cause.
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "20")]);
    let mut sandbox = Sandbox::new("e2e-burst", &idp.issuer);
    // As users run it: the tests' debug level writes a log line per request.
    sandbox.set_env("STAGEPASS_LOG", "info");
    sandbox.login_browser();
    let first = sandbox.run(&["token", "--min-valid", "0"]);
    first.assert_ok();
    std::thread::sleep(Duration::from_secs(11));
    let calls_before = idp.refresh_calls();

    let socket = sandbox.runtime_dir().join("agent.sock");
    let results = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(burst(&socket));

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

    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    eprintln!(
        "burst of {CALLERS}: min {:?}, p50 {:?}, p99 {:?}, max {:?}",
        latencies[0],
        latencies[CALLERS / 2],
        latencies[CALLERS * 99 / 100],
        latencies[CALLERS - 1]
    );
}

/// Starts every caller at once; each connects, asks and reads its answer.
async fn burst(socket: &Path) -> Vec<(String, Duration)> {
    let limit = stagepass_proto::MAX_REQUEST_LEN;
    let mut asking = stagepass_proto::encode(
        &Hello {
            protocol: PROTOCOL_VERSION,
            client: "stagepass-test".into(),
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
