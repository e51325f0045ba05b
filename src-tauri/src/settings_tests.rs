use super::*;

const USER_FILE: &str = r#"# My stagepass config. Keep this comment.

[profiles.corp]   # the company IdP
issuer = "https://idp.example.com/realms/eng"
client_id = "stagepass"
# groups come from Keycloak's mapper
scopes = ["openid", "email", "groups", "offline_access"]
flow = "browser"

[[git]]
url = "https://git.example.com/"
profile = "corp"
username_from = "preferred_username"   # a key the settings window does not show

[[docker]]
registry = "registry.example.com"
profile = "corp"
"#;

fn editor(text: &str) -> (tempfile::TempDir, ConfigEditor) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let editor = ConfigEditor::open(&path).unwrap();
    (dir, editor)
}

fn form(name: &str) -> ProfileForm {
    ProfileForm {
        name: name.into(),
        kind: ProfileKindTag::Oidc,
        url: None,
        via_profile: None,
        issuer: "https://login.example.org".into(),
        client_id: "native-app".into(),
        scopes: vec!["openid".into(), "email".into()],
        audience: Some("https://backstage.example.org".into()),
        flow: FlowPreference::Auto,
        groups_claim: None,
    }
}

#[test]
fn edits_keep_comments_and_unknown_keys() {
    let (_dir, mut editor) = editor(USER_FILE);
    let mut corp = editor.view().unwrap().profiles[0].clone();
    corp.client_id = "stagepass-2".into();
    editor.upsert_profile(Some("corp"), &corp).unwrap();
    editor.upsert_profile(None, &form("home")).unwrap();
    editor
        .set_desktop(&Desktop {
            notifications: false,
            backstage_url: Some("https://backstage.example.com".into()),
            quit_stops_agent: false,
        })
        .unwrap();
    editor.save().unwrap();

    let text = std::fs::read_to_string(&editor.path).unwrap();
    for kept in [
        "# My stagepass config. Keep this comment.",
        "# the company IdP",
        "# groups come from Keycloak's mapper",
        "username_from = \"preferred_username\"   # a key the settings window does not show",
        "flow = \"browser\"",
        "[[docker]]",
    ] {
        assert!(text.contains(kept), "lost {kept:?}:\n{text}");
    }
    assert!(text.contains("client_id = \"stagepass-2\""), "{text}");
    let reread = ConfigEditor::open(&editor.path).unwrap().parsed().unwrap();
    assert_eq!(
        reread.profiles["home"].audience(),
        Some("https://backstage.example.org")
    );
    assert!(!reread.desktop.notifications);
    assert_eq!(reread.git[0].profile, "corp");
}

#[test]
fn rename_moves_references_and_remove_refuses_used_profiles() {
    let (_dir, mut editor) = editor(USER_FILE);
    let mut corp = editor.view().unwrap().profiles[0].clone();
    corp.name = "work".into();
    editor.upsert_profile(Some("corp"), &corp).unwrap();
    let config = editor.parsed().unwrap();
    assert_eq!(config.git[0].profile, "work");
    assert_eq!(config.docker[0].profile, "work");
    assert!(
        editor
            .text()
            .contains("# groups come from Keycloak's mapper")
    );

    let err = editor.remove_profile("work").unwrap_err();
    assert!(
        err.message.contains("[[git]] https://git.example.com/"),
        "{err:?}"
    );
    assert!(
        err.message.contains("[[docker]] registry.example.com"),
        "{err:?}"
    );
}

#[test]
fn invalid_results_are_not_written() {
    let (_dir, mut editor) = editor(USER_FILE);
    let mut bad = form("home");
    bad.issuer = "http://idp.example.org".into();
    editor.upsert_profile(None, &bad).unwrap();
    let err = editor.save().unwrap_err();
    assert!(err.message.contains("must use https"), "{err:?}");
    assert_eq!(std::fs::read_to_string(&editor.path).unwrap(), USER_FILE);
    assert!(
        editor.upsert_profile(None, &form("corp")).is_err(),
        "duplicate name"
    );
}

#[test]
fn a_missing_file_is_created_and_git_hosts_keep_extra_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/config.toml");
    let mut created = ConfigEditor::open(&path).unwrap();
    created.upsert_profile(None, &form("home")).unwrap();
    created.save().unwrap();
    assert!(Config::load(&path).unwrap().profiles.contains_key("home"));

    let (_dir, mut editor) = editor(USER_FILE);
    let hosts = editor.view().unwrap().git_hosts;
    assert_eq!(hosts[0].auth, "basic");
    let mut changed = hosts.clone();
    changed[0].auth = "bearer".into();
    editor.set_git_hosts(&changed).unwrap();
    let text = editor.text();
    assert!(
        text.contains("username_from = \"preferred_username\""),
        "{text}"
    );
    assert!(text.contains("auth = \"bearer\""), "{text}");
}

#[test]
fn form_validation_uses_the_core_rules() {
    let mut no_openid = form("x");
    no_openid.scopes = vec!["email".into()];
    let err = no_openid.to_profile().unwrap_err();
    assert!(err.message.contains("openid"), "{err:?}");
    assert_eq!(form("x").to_profile().unwrap().client_id(), "native-app");
}

const BACKSTAGE_FILE: &str = r#"[profiles.portal]   # our Backstage
kind = "backstage"
url = "https://backstage.example.com"
"#;

#[test]
fn a_backstage_profile_keeps_only_what_the_user_chose() {
    let (_dir, mut editor) = editor(BACKSTAGE_FILE);
    let mut portal = editor.view().unwrap().profiles[0].clone();
    assert_eq!(portal.kind, ProfileKindTag::Backstage);
    assert_eq!(portal.issuer, "https://backstage.example.com/api/auth");
    assert_eq!(
        portal.client_id, "",
        "the built-in CLI client shows as the default"
    );
    portal.groups_claim = Some("ent".into());
    editor.upsert_profile(Some("portal"), &portal).unwrap();
    editor.save().unwrap();
    let text = std::fs::read_to_string(&editor.path).unwrap();
    assert!(text.contains("# our Backstage"), "{text}");
    for derived in ["issuer", "client_id", "scopes", "audience"] {
        assert!(
            !text.contains(derived),
            "wrote the derived {derived}:\n{text}"
        );
    }
    let reread = ConfigEditor::open(&editor.path).unwrap().parsed().unwrap();
    assert!(reread.profiles["portal"].uses_backstage_cli_client());
    assert_eq!(
        reread.profiles["portal"].groups_claim.as_deref(),
        Some("ent")
    );

    // Its own client-ID document, then back to an OIDC provider: no Backstage key survives
    // that the core would refuse.
    portal.client_id = "https://example.com/stagepass.json".into();
    editor.upsert_profile(Some("portal"), &portal).unwrap();
    assert_eq!(
        editor.parsed().unwrap().profiles["portal"].client_id(),
        "https://example.com/stagepass.json"
    );
    let oidc = ProfileForm {
        name: "portal".into(),
        ..form("portal")
    };
    editor.upsert_profile(Some("portal"), &oidc).unwrap();
    let parsed = editor.parsed().unwrap();
    assert_eq!(parsed.profiles["portal"].tag(), ProfileKindTag::Oidc);
    assert!(!editor.text().contains("url ="), "{}", editor.text());
}

#[test]
fn a_backstage_profile_behind_a_proxy_keeps_its_idp_profile() {
    let text = format!(
        "{USER_FILE}\n[profiles.portal]\nkind = \"backstage\"\nurl = \"https://portal.example.com\"\nvia_profile = \"corp\"\n"
    );
    let (_dir, mut editor) = editor(&text);
    let portal = editor
        .view()
        .unwrap()
        .profiles
        .into_iter()
        .find(|profile| profile.name == "portal")
        .unwrap();
    assert_eq!(portal.via_profile.as_deref(), Some("corp"));
    assert_eq!(portal.client_id, "", "no OAuth client of its own to show");
    assert!(
        portal.to_profile().is_ok(),
        "checked alone, without its IdP profile"
    );
    editor.upsert_profile(Some("portal"), &portal).unwrap();
    let parsed = editor.parsed().unwrap();
    assert_eq!(
        parsed.profiles["portal"].via(),
        Some(&stagepass_core::config::ViaProfile {
            profile: "corp".into(),
            auth_provider: "oauth2Proxy".into()
        })
    );
    assert!(
        !editor.text().contains("client_id = \"https://portal"),
        "{}",
        editor.text()
    );
}
