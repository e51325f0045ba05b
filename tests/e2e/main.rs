//! The end-to-end tests: the real `stagepass` binaries against real parts (the test IdP of
//! tests/idp, Keycloak, Backstage, git, kubectl, skopeo, the real Secret Service through
//! scripts/with-keyring). One binary, one module per area, so `support` compiles and links
//! once: `cargo test --test e2e` runs them all, `cargo test --test e2e sign_in::` one area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    reason = "a test binary: a failed unwrap, expect or panic is a failed test, its message says why"
)]

mod support;

mod approval;
mod audit;
mod backstage;
mod bad_inputs;
mod burst;
mod client_secret;
mod crash;
mod delegate;
mod delegate_tokens;
mod docker_helper;
mod doctor;
mod events;
mod git_helper;
mod github;
mod google;
mod hardening;
mod keycloak;
mod kube_helper;
mod mcp;
mod notifications;
mod presets;
mod proxy;
mod proxy_browser;
mod refresh;
mod remote;
mod sign_in;
