//! kill -9 of the agent at any point of a refresh never signs the user out, even against an
//! IdP that revokes the whole grant when a rotated refresh token is presented again.

use crate::support;

use support::{Idp, Sandbox};

const KILLS: usize = 100;

#[test]
fn killing_the_agent_during_refreshes_never_loses_the_login() {
    // The kills are spread over a span timed at the start: no other test may slow it.
    let _alone = support::alone();
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "2")]);
    let sandbox = Sandbox::new("e2e-crash", &idp.issuer);
    sandbox.login_browser();
    let span = support::crash::kill_the_agent_during_refreshes(&sandbox, KILLS);

    let refreshes = idp.refresh_calls();
    eprintln!("{KILLS} kills over {span:?} each, {refreshes} refreshes reached the IdP");
    assert!(
        refreshes >= KILLS as u64 / 4,
        "the kills should hit refreshes: {refreshes}"
    );

    let after = sandbox.run(&["token", "--no-interactive"]);
    after.assert_ok();
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
}
