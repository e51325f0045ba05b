//! The `discover` command against a small local IdP that serves only discovery and JWKS:
//! what the settings form shows before a profile is saved.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    reason = "a test binary: a failed unwrap, expect or panic is a failed test, its message says why"
)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use serde_json::json;

/// Serves the discovery document and an empty JWKS on 127.0.0.1 until the test ends.
fn serve_idp(device_flow: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    });
    if device_flow {
        document["device_authorization_endpoint"] = json!(format!("{issuer}/device"));
    }
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let body = if request_line.contains("/.well-known/openid-configuration") {
                document.to_string()
            } else {
                json!({ "keys": [] }).to_string()
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    issuer
}

fn form(issuer: &str, scopes: &[&str]) -> serde_json::Value {
    json!({ "form": { "name": "corp", "issuer": issuer, "client_id": "stagepass",
        "scopes": scopes, "audience": null, "flow": "auto", "groups_claim": null } })
}

#[test]
fn discovery_reports_what_the_idp_supports() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::harness(&dir.path().join("config.toml"), dir.path());
    let issuer = serve_idp(true);
    let found = h.invoke("discover", form(&issuer, &["openid"])).unwrap();
    assert_eq!(found["issuer"], issuer);
    assert_eq!(found["pkce_s256"], true);
    assert_eq!(found["device_flow"], true);
    assert_eq!(found["revocation"], true);
    assert_eq!(found["iss_parameter"], false);

    let without_device = serve_idp(false);
    let found = h
        .invoke("discover", form(&without_device, &["openid"]))
        .unwrap();
    assert_eq!(found["device_flow"], false);

    // The issuer must match the document's exactly: a trailing slash is another issuer.
    let err = h
        .invoke("discover", form(&format!("{issuer}/"), &["openid"]))
        .unwrap_err();
    assert!(err["hint"].as_str().unwrap().contains("issuer"), "{err}");

    let err = h.invoke("discover", form(&issuer, &["email"])).unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("openid"), "{err}");
}
