//! Property-based fuzzing of git's credential protocol parser (`git_credential::Query`).
//!
//! Not part of the default test run (`#[ignore]`): `scripts/fuzz-git-credential` runs these
//! for minutes in release mode. Each property runs batches of random cases until
//! `FUZZ_SECONDS` (default 5) have passed, then prints how many cases it ran. A failure panics
//! with the shrunk input.
//!
//!     FUZZ_SECONDS=60 cargo test --release -p stagepass-core --test fuzz_git_credential -- --ignored --nocapture

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    reason = "a test binary: a failed unwrap, expect or panic is a failed test, its message says why"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use stagepass_core::credential_map::Target;
use stagepass_core::git_credential::{MAX_INPUT, Query, write_answer};

/// Runs `property` on inputs from `strategy` until the time is up.
fn fuzz<S>(name: &str, strategy: S, property: impl Fn(&[u8]) -> Result<(), TestCaseError>)
where
    S: Strategy<Value = Vec<u8>>,
{
    let seconds: f64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5.0);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let cases = AtomicU64::new(0);
    while Instant::now() < deadline {
        // Every batch draws a fresh random seed.
        let mut runner = TestRunner::new(Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |input| {
            cases.fetch_add(1, Ordering::Relaxed);
            property(&input)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => panic!(
                "{name}: {reason}\nminimal input: b\"{}\"",
                input.escape_ascii()
            ),
            Err(TestError::Abort(reason)) => panic!("{name}: aborted: {reason}"),
        }
    }
    eprintln!(
        "fuzz {name}: {} cases in {:.1?}, no failure",
        cases.load(Ordering::Relaxed),
        started.elapsed()
    );
}

/// A URL built from a query must never carry what `write_answer` refuses, and must stay
/// writable into an answer.
fn check_url(query: &Query) -> Result<(), TestCaseError> {
    if let Some(url) = query.url() {
        prop_assert!(
            !url.contains(['\n', '\r', '\0']),
            "url() holds a line break or NUL: {url:?}"
        );
        let mut out = Vec::new();
        prop_assert!(write_answer(&[("url", &url)], &mut out).is_ok());
    }
    Ok(())
}

fn keys() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "protocol",
            "host",
            "path",
            "username",
            "password",
            "credential",
            "capability[]",
            "url",
            "wwwauth[]",
            "authtype",
            "ephemeral",
            "password_expiry_utc",
            "state[]",
            "continue",
        ])
        .prop_map(String::from),
        1 => prop::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),
        1 => Just(String::new()),
    ]
}

/// Characters that mean something to URLs, line-based protocols or C strings.
const AWKWARD: &[char] = &[
    '\r', '\t', '\0', ' ', '/', '\\', '?', '#', '@', ':', '%', '[', ']', '=', '.', '\u{7f}',
    '\u{85}', '\u{2028}', '\u{ff0e}', '\u{ff20}', 'é',
];

fn awkward_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::char::range('a', 'z'),
            1 => prop::sample::select(AWKWARD),
            1 => any::<char>(),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => awkward_text(40),
        2 => prop::sample::select(vec![
            "https",
            "http",
            "git.example.com",
            "127.0.0.1:8080",
            "[::1]:443",
            "team/app.git",
            "authtype",
            "Bearer",
            "https://git.example.com/team/app.git",
            "https://user:pw@git.example.com:8443/a?b#c",
            "http://[::1",
            "https://evil.test@git.example.com/",
            "file:///etc/passwd",
            "data:text/plain,x",
            "https://xn--nxasmq6b.test/",
            "https://%65vil.test/",
        ])
        .prop_map(String::from),
        1 => (prop::sample::select(vec!["https://", "http://", "url=", ""]), awkward_text(60))
            .prop_map(|(prefix, rest)| format!("{prefix}{rest}")),
        // Around the size limit of one value.
        1 => (16_370usize..16_400).prop_map(|len| "h".repeat(len)),
    ]
}

/// Lines that look like what git sends, with random keys, values and line ends.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        keys(),
        prop_oneof![8 => Just("="), 1 => Just(""), 1 => Just("==")],
        values(),
        prop::sample::select(vec!["\n", "\n", "\n", "\r\n", "\r", "\n\r", ""]),
    )
        .prop_map(|(key, eq, value, end)| format!("{key}{eq}{value}{end}"));
    (
        prop::collection::vec(line, 0..12),
        prop::sample::select(vec!["", "\n", "\n\n", "\r\n\r\n", "\nhost=after.test\n"]),
    )
        .prop_map(|(lines, tail)| {
            let mut text = lines.concat();
            text.push_str(tail);
            text.into_bytes()
        })
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => prop::collection::vec(any::<u8>(), 0..512),
        // Mostly printable, with the protocol's separators.
        20 => prop::collection::vec(
            prop_oneof![
                4 => 0x20u8..0x7f,
                1 => prop::sample::select(vec![b'\n', b'\r', b'=', 0, 0xff, 0xc3]),
            ],
            0..1024,
        ),
        1 => prop::collection::vec(any::<u8>(), MAX_INPUT - 16..MAX_INPUT + 16),
    ]
}

fn label() -> impl Strategy<Value = String> {
    (
        prop::char::range('a', 'z'),
        prop::collection::vec(
            prop_oneof![
                prop::char::range('a', 'z'),
                prop::char::range('0', '9'),
                Just('A')
            ],
            0..8,
        ),
    )
        .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
}

/// A host as git sends it (`host[:port]`), sometimes with one awkward character inserted.
fn git_host() -> impl Strategy<Value = String> {
    let plain = prop_oneof![
        prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join(".")),
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[::1]".to_string()),
    ];
    let port = prop_oneof![
        2 => Just(String::new()),
        1 => (1u16..=u16::MAX).prop_map(|port| format!(":{port}")),
        1 => prop::sample::select(vec![":443", ":80"]).prop_map(String::from),
    ];
    let injected = prop_oneof![
        2 => Just(None),
        1 => (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                '@', '/', '?', '#', '\\', '\r', '\t', ' ', '%', ':', '[', ']', '\u{7f}', '\u{b}',
            ])
        )
            .prop_map(Some),
    ];
    (plain, port, injected).prop_map(|(host, port, injected)| {
        let mut host = format!("{host}{port}");
        if let Some((at, c)) = injected {
            let chars: Vec<char> = host.chars().collect();
            let at = at.index(chars.len() + 1);
            host = chars[..at]
                .iter()
                .chain(std::iter::once(&c))
                .chain(&chars[at..])
                .collect();
        }
        host
    })
}

/// A `get` request as git writes it.
fn git_request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["https", "http", "HTTPS"]),
        git_host(),
        prop::option::of(awkward_text(30)),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(protocol, host, path, bearer, crlf)| {
            let mut lines = Vec::new();
            if bearer {
                lines.push("capability[]=authtype".to_string());
            }
            lines.push(format!("protocol={protocol}"));
            lines.push(format!("host={host}"));
            if let Some(path) = path {
                // git never sends a NUL or a line feed inside a value.
                lines.push(format!("path={}", path.replace(['\0', '\n'], "")));
            }
            lines.push("wwwauth[]=Basic realm=\"x\"".into());
            let end = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(end);
            text.push_str(end);
            text.push_str(end);
            text.into_bytes()
        })
}

#[test]
#[ignore = "fuzzing: run by scripts/fuzz-git-credential"]
fn arbitrary_bytes_never_panic_and_never_make_an_unsafe_url() {
    fuzz("arbitrary_bytes", arbitrary_bytes(), |input| {
        if let Ok(query) = Query::parse(input) {
            check_url(&query)?;
        }
        Ok(())
    });
}

#[test]
#[ignore = "fuzzing: run by scripts/fuzz-git-credential"]
fn near_valid_requests_never_panic_and_never_make_an_unsafe_url() {
    fuzz("near_valid", near_valid(), |input| {
        if let Ok(query) = Query::parse(input) {
            prop_assert!(!input.contains(&0), "a NUL byte was accepted");
            check_url(&query)?;
        }
        Ok(())
    });
}

/// The server the helper looks up is the one git named: the URL built from `protocol` and
/// `host` names that scheme and that host (modulo case and the default port), or nothing.
#[test]
#[ignore = "fuzzing: run by scripts/fuzz-git-credential"]
fn git_requests_round_trip_protocol_and_host() {
    fuzz("git_request", git_request(), |input| {
        let text = std::str::from_utf8(input).unwrap();
        let field = |key: &str| {
            text.split('\n')
                .map(|line| line.strip_suffix('\r').unwrap_or(line))
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .unwrap()
                .to_string()
        };
        let (protocol, host) = (field("protocol"), field("host"));
        let query = Query::parse(input);
        prop_assert!(query.is_ok(), "git's request was refused: {query:?}");
        let query = query.unwrap();
        prop_assert_eq!(query.protocol.as_deref(), Some(protocol.as_str()));
        prop_assert_eq!(query.host.as_deref(), Some(host.as_str()));
        check_url(&query)?;
        let Some(url) = query.url() else {
            return Ok(());
        };
        let Some(target) = Target::parse(&url) else {
            return Ok(());
        };
        let scheme = protocol.to_ascii_lowercase();
        prop_assert_eq!(&target.scheme, &scheme, "url {:?}", url);
        // `host:`, `host:0443` and `host:443` (https) name `host:443`, to curl as to the url
        // crate: compare ports as numbers.
        let host = host.to_ascii_lowercase();
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
                (name, port.parse::<u16>().ok())
            }
            _ => (host.as_str(), None),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let expected = match port {
            Some(port) if port != default_port => format!("{name}:{port}"),
            _ => name.to_string(),
        };
        // IPv4 shorthand (`10.1`, `1.2.3.`) is read by inet_aton rules, by curl as by the url
        // crate: only canonical dotted quads can be compared as text.
        if name.chars().all(|c| c.is_ascii_digit() || c == '.')
            && name.parse::<std::net::Ipv4Addr>().is_err()
        {
            return Ok(());
        }
        prop_assert_eq!(
            &target.authority,
            &expected,
            "the URL {:?} names another server than git's host {:?}",
            url,
            host
        );
        Ok(())
    });
}
