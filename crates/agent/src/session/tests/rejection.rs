use super::*;
use crate::audit::fingerprint;

fn reject(world: &World, token: &str) -> bool {
    crate::session::token_rejected(&world.agent, &world.session(), &fingerprint(token))
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_not_handed_out_again_and_forced_refreshes_are_rate_limited() {
    let world = World::signed_in().await;
    assert_eq!(world.access_token().await, Ok("at-1".into()));
    assert!(!reject(&world, "a token this agent never held"));

    assert!(reject(&world, "at-1"));
    world.idp.route("/token", tokens(2));
    assert_eq!(world.access_token().await, Ok("at-2".into()));
    assert_eq!(world.refreshes(), 2);

    // A server that rejects every token gets the same one back within the interval...
    assert!(!reject(&world, "at-2"));
    world.idp.route("/token", tokens(3));
    assert_eq!(world.access_token().await, Ok("at-2".into()));
    assert_eq!(world.refreshes(), 2);
    // ...and one refresh per interval after it.
    world.pass(Duration::from_secs(10)).await;
    assert!(reject(&world, "at-2"));
    assert_eq!(world.access_token().await, Ok("at-3".into()));
    assert_eq!(world.refreshes(), 3);
}
