use super::*;

#[tokio::test(start_paused = true)]
async fn the_scheduler_refreshes_ahead_of_expiry() {
    let world = World::signed_in().await;
    tokio::spawn(crate::scheduler::run(world.agent.clone()));
    assert_eq!(world.access_token().await, Ok("at-1".into()));
    world.idp.route("/token", tokens(2));

    // Due at 80 % of the 300 s lifetime.
    world.pass(Duration::from_secs(239)).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(world.refreshes(), 1, "not before it is due");
    world.pass(Duration::from_secs(2)).await;
    until("the scheduler refreshed", || world.refreshes() == 2).await;
    until("the new token is saved", || {
        world.saved_refresh_token().as_deref() == Some("rt-2")
    })
    .await;
    // Callers find it in memory, still valid long after the old one expired.
    world.pass(Duration::from_secs(100)).await;
    assert_eq!(world.access_token().await, Ok("at-2".into()));
    assert_eq!(world.refreshes(), 2);
}

/// An IdP that refuses the refresh without killing the login (a rotated client secret:
/// `invalid_client`) is asked again on the outage backoff, not in a loop.
#[tokio::test(start_paused = true)]
async fn a_refused_refresh_backs_off_instead_of_looping() {
    let world = World::signed_in().await;
    tokio::spawn(crate::scheduler::run(world.agent.clone()));
    assert_eq!(world.access_token().await, Ok("at-1".into()));
    world.idp.route(
        "/token",
        Reply::json(401, json!({ "error": "invalid_client" })),
    );
    world.pass(Duration::from_secs(241)).await;
    until("the scheduler tried", || world.refreshes() >= 2).await;
    // A minute of the backoff's 4 s, 8 s, 16 s, 32 s: four more attempts at most.
    for _ in 0..60 {
        world.pass(Duration::from_secs(1)).await;
        // The scheduler's refresh talks to the fake IdP over real TCP: give it real time.
        for _ in 0..20 {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let refreshes = world.refreshes();
    assert!(
        (3..=6).contains(&refreshes),
        "{refreshes} refreshes in a minute"
    );
    // The token has expired by now: a caller gets the IdP's refusal at once, from the
    // backoff, without another call.
    let answer = world.access_token().await.unwrap_err();
    assert!(answer.contains("invalid_client"), "{answer}");
    assert_eq!(world.refreshes(), refreshes);
}
