use tokio::task::JoinSet;

use super::*;

#[tokio::test(start_paused = true)]
async fn concurrent_requests_after_expiry_reach_the_idp_once() {
    let world = World::signed_in().await;
    assert_eq!(world.access_token().await, Ok("at-1".into()));
    assert_eq!(world.refreshes(), 1);

    world.idp.route("/token", tokens(2));
    world.pass(EXPIRED).await;
    let mut callers = JoinSet::new();
    for _ in 0..50 {
        let (agent, session) = (world.agent.clone(), world.session());
        callers.spawn(async move {
            crate::session::token(&agent, &session, TokenKind::Access, Duration::ZERO)
                .await
                .map(|grant| grant.token.expose().to_string())
                .map_err(|err| err.message)
        });
    }
    let answers = callers.join_all().await;
    assert!(
        answers.iter().all(|answer| *answer == Ok("at-2".into())),
        "{answers:?}"
    );
    assert_eq!(world.refreshes(), 2, "one refresh for 50 callers");
}

#[tokio::test(start_paused = true)]
async fn callers_that_waited_for_a_holder_that_left_no_token_refresh_once_themselves() {
    let world = World::signed_in().await;
    assert_eq!(world.access_token().await, Ok("at-1".into()));
    world.idp.route("/token", tokens(2));
    world.pass(EXPIRED).await;

    // A holder (as a sign-out or the scheduler would be) that changes nothing.
    let session = world.session();
    let held = session.exclusive().await;
    let mut callers = JoinSet::new();
    for _ in 0..10 {
        let (agent, session) = (world.agent.clone(), world.session());
        callers.spawn(async move {
            crate::session::token(&agent, &session, TokenKind::Access, Duration::ZERO)
                .await
                .map(|grant| grant.token.expose().to_string())
                .map_err(|err| err.message)
        });
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        world.refreshes(),
        1,
        "nobody refreshes while the session is held"
    );
    drop(held);

    let answers = callers.join_all().await;
    assert!(
        answers.iter().all(|answer| *answer == Ok("at-2".into())),
        "{answers:?}"
    );
    assert_eq!(
        world.refreshes(),
        2,
        "one refresh for the ten, after the holder"
    );
}
