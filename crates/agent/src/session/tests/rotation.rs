use stagepass_proto::ErrorKind;

use super::*;

#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_the_keychain_refused_is_kept_and_saved_before_any_hand_out() {
    let world = World::signed_in().await;
    world.access_token().await.unwrap();
    assert_eq!(world.saved_refresh_token().as_deref(), Some("rt-1"));

    world.refuse_keychain_writes(true);
    world.idp.route("/token", tokens(2));
    world.pass(EXPIRED).await;
    let err = world.token(Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Keychain, "{err:?}");
    assert_eq!(world.refreshes(), 2);
    // Nothing handed out, the IdP's rotated token only in memory.
    let session = world.session();
    assert!(
        crate::session::cached_token(&world.agent, &session, TokenKind::Access, Duration::ZERO)
            .is_none()
    );
    assert_eq!(world.saved_refresh_token().as_deref(), Some("rt-1"));
    assert_eq!(world.held_refresh_token().as_deref(), Some("rt-2"));

    // The next ask retries the write, not the IdP (which has consumed rt-1 by now).
    assert!(world.token(Duration::ZERO).await.is_err());
    world.refuse_keychain_writes(false);
    assert_eq!(world.access_token().await, Ok("at-2".into()));
    assert_eq!(world.refreshes(), 2, "the IdP was asked once for at-2");
    assert_eq!(world.saved_refresh_token().as_deref(), Some("rt-2"));
}
