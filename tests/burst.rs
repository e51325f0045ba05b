//! A burst of concurrent token requests that all need a refresh reaches the IdP once.

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use stagepass_client::Client;
use stagepass_proto::{Request, Response, TokenKind};
use support::{Idp, Sandbox};

const CALLERS: usize = 1000;

#[test]
fn a_thousand_concurrent_requests_make_exactly_one_refresh() {
    // 20 s tokens: the agent's own proactive refresh is due at 15-16 s. Between 10 s and
    // 15 s, asking for 20 s of validity (capped at half the lifetime) needs a refresh that
    // only the burst can cause.
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "20")]);
    let sandbox = Sandbox::new("e2e-burst", &idp.issuer);
    sandbox.login_browser();
    let first = sandbox.run(&["token", "--min-valid", "0"]);
    first.assert_ok();
    std::thread::sleep(Duration::from_secs(11));
    let calls_before = idp.refresh_calls();

    let runtime_dir = sandbox.runtime_dir();
    let barrier = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let runtime_dir = runtime_dir.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let mut client = Client::connect(&runtime_dir, "stagepass-test").unwrap();
                let response = client
                    .call(&Request::GetToken {
                        profile: None,
                        kind: TokenKind::Access,
                        min_valid_secs: 20,
                        interactive: false,
                        browser_available: false,
                    })
                    .unwrap();
                let Response::Token(grant) = response else {
                    panic!("not a token: {response:?}");
                };
                (grant.token.expose().clone(), started.elapsed())
            })
        })
        .collect();
    let results: Vec<(String, Duration)> = callers
        .into_iter()
        .map(|caller| caller.join().unwrap())
        .collect();

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
