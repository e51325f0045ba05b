use tokio::task::JoinSet;

use super::*;

/// `n` concurrent callers asking for an access token: the token, or the error's message.
fn callers(world: &World, n: usize) -> JoinSet<Result<String, String>> {
    let mut callers = JoinSet::new();
    for _ in 0..n {
        let (agent, session) = (world.agent.clone(), world.session());
        callers.spawn(async move {
            crate::session::token(&agent, &session, TokenKind::Access, Duration::ZERO)
                .await
                .map(|grant| grant.token.expose().to_string())
                .map_err(|err| err.message)
        });
    }
    callers
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_after_expiry_reach_the_idp_once() {
    let world = World::signed_in().await;
    assert_eq!(world.access_token().await, Ok("at-1".into()));
    assert_eq!(world.refreshes(), 1);

    world.idp.route("/token", tokens(2));
    world.pass(EXPIRED).await;
    let answers = callers(&world, 50).join_all().await;
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
    let callers = callers(&world, 10);
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
