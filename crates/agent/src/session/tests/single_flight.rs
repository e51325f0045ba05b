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
