use serde_json::json;
use stagepass_proto::EventKind;

use super::*;

/// Every transition tells subscribers and the audit log itself; this failure used to go
/// untold and unaudited.
#[tokio::test(start_paused = true)]
async fn a_failed_backstage_refresh_through_the_proxy_is_announced_and_audited() {
    let world = World::signed_in_with(
        "[profiles.portal]\nkind = \"backstage\"\nurl = \"{idp}\"\nvia_profile = \"corp\"\n",
    )
    .await;
    world.idp.route(
        "/api/auth/oauth2Proxy/refresh",
        Reply::json(503, json!({ "error": "down" })),
    );
    let mut events = world.agent.sessions.subscribe();
    let portal = world.session_of("portal");
    let result =
        crate::session::token(&world.agent, &portal, TokenKind::Access, Duration::ZERO).await;
    assert!(result.is_err(), "{result:?}");
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push((event.profile.name, event.kind));
    }
    assert_eq!(
        seen,
        [
            ("corp".to_string(), EventKind::Refreshed),
            ("portal".to_string(), EventKind::RefreshFailing)
        ]
    );
    let audited = |event: &str, profile: &str| {
        audit_lines(&world).iter().any(|line| {
            line["event"] == event && line["profile"] == profile && line["consumer"] == "agent"
        })
    };
    until("the audit has both refreshes", || {
        audited("refresh", "corp") && audited("refresh_failed", "portal")
    })
    .await;
}

fn audit_lines(world: &World) -> Vec<serde_json::Value> {
    let path = stagepass_core::paths::audit_log_path(&world.agent.options.data_dir);
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
