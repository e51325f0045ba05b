use stagepass_proto::ErrorKind;

use super::*;

#[tokio::test(start_paused = true)]
async fn an_idp_outage_backs_off_and_recovery_resets_the_backoff() {
    let world = World::signed_in().await;
    world.access_token().await.unwrap();
    world.idp.route("/token", outage());
    world.pass(EXPIRED).await;

    let err = world.token(Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::IdpUnreachable, "{err:?}");
    assert_eq!(world.refreshes(), 2);
    // First retry after 4 s (5 s, with the fixed jitter's -20 %): earlier asks are answered
    // with the last failure, without calling the IdP.
    world.pass(Duration::from_secs(3)).await;
    assert!(world.token(Duration::ZERO).await.is_err());
    assert_eq!(world.refreshes(), 2, "backing off");
    world.pass(Duration::from_secs(1)).await;
    assert!(world.token(Duration::ZERO).await.is_err());
    assert_eq!(world.refreshes(), 3, "retried once the backoff allowed");
    // The second wait doubles.
    world.idp.route("/token", tokens(2));
    world.pass(Duration::from_secs(7)).await;
    assert!(world.token(Duration::ZERO).await.is_err());
    assert_eq!(world.refreshes(), 3, "still backing off");
    world.pass(Duration::from_secs(1)).await;
    assert_eq!(world.access_token().await, Ok("at-2".into()));
    assert_eq!(world.refreshes(), 4);

    // Recovered: the next outage starts over at the first wait.
    world.idp.route("/token", outage());
    world.pass(EXPIRED).await;
    assert!(world.token(Duration::ZERO).await.is_err());
    world.pass(Duration::from_secs(4)).await;
    assert!(world.token(Duration::ZERO).await.is_err());
    assert_eq!(world.refreshes(), 6);
}

#[tokio::test(start_paused = true)]
async fn during_an_outage_a_still_valid_token_beats_an_error() {
    let world = World::signed_in().await;
    world.access_token().await.unwrap();
    world.idp.route("/token", outage());
    world.pass(Duration::from_secs(200)).await;
    // Valid for 100 s more, not the 120 s asked for: the refresh is tried, fails, and the
    // token held is the answer.
    let grant = world.token(Duration::from_secs(120)).await.unwrap();
    assert_eq!(grant.token.expose(), "at-1");
    assert_eq!(world.refreshes(), 2);
}
