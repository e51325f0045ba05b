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
