//! `stagepass config init`: every preset's output compared with tests/snapshots/ (rewrite
//! them with UPDATE_SNAPSHOTS=1 and review the diff), and writing into a config file
//! without losing what is there.

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use support::{CLIENT_ID, Idp, Run, Sandbox, repo_root};

/// Each preset with the inputs a user would give.
const CASES: &[(&str, &[&str])] = &[
    (
        "keycloak",
        &[
            "--domain",
            "sso.example.com",
            "--realm",
            "eng",
            "--client-id",
            "stagepass",
        ],
    ),
    (
        "okta",
        &["--domain", "example.okta.com", "--client-id", "0oa1b2c3d4"],
    ),
    (
        "entra",
        &[
            "--tenant",
            "11111111-2222-4333-8444-555555555555",
            "--client-id",
            "66666666-7777-4888-9999-000000000000",
            "--audience",
            "api://backstage",
        ],
    ),
    ("google", &["--client-id", "123.apps.googleusercontent.com"]),
    ("gitlab", &["--client-id", "abc123"]),
    ("github", &["--client-id", "Iv1.abc"]),
    ("space", &["--client-id", "abc"]),
    (
        "auth0",
        &[
            "--domain",
            "example.eu.auth0.com",
            "--client-id",
            "abc",
            "--audience",
            "https://backstage.example.com",
        ],
    ),
    (
        "generic",
        &[
            "--issuer",
            "https://idp.example.com",
            "--client-id",
            "stagepass",
            "--name",
            "corp",
        ],
    ),
];

fn stagepass(config: &std::path::Path, args: &[&str]) -> Run {
    Run(Command::new(env!("CARGO_BIN_EXE_stagepass"))
        .args(args)
        .env("STAGEPASS_CONFIG", config)
        .stdin(Stdio::null())
        .output()
        .unwrap())
}

fn snapshot_path(preset: &str) -> PathBuf {
    repo_root().join(format!("tests/snapshots/config-init-{preset}.txt"))
}

#[test]
fn every_preset_prints_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|value| value == "1");
    let mut mismatched = Vec::new();
    for (preset, inputs) in CASES {
        let mut args = vec!["config", "init", "--print", "--preset", preset];
        args.extend_from_slice(inputs);
        let run = stagepass(&config, &args);
        // What a user sees: the profile on stdout, or why there is none and the exit code.
        let shown = if run.code() == 0 {
            run.stdout()
        } else {
            format!("exit code {}\n{}", run.code(), run.stderr())
        };
        let path = snapshot_path(preset);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &shown).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != shown {
            mismatched.push(format!(
                "--- {} (expected)\n{expected}\n--- {preset} (got)\n{shown}",
                path.display()
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "preset output changed; if on purpose, rerun with UPDATE_SNAPSHOTS=1 and review the diff\n{}",
        mismatched.join("\n")
    );
    assert!(!config.exists(), "--print must not write the config");
}

#[test]
fn a_preset_the_config_cannot_express_explains_why_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let run = stagepass(
        &config,
        &["config", "init", "--preset", "space", "--client-id", "x"],
    );
    run.assert_code(2);
    run.assert_stderr_contains("the space preset cannot write a working profile");
    run.assert_stderr_contains("docs/providers/space.md");
    run.assert_stderr_contains("JetBrains discontinued Space on 1 June 2025");
    assert!(!config.exists());
}

#[test]
fn init_appends_refuses_a_duplicate_and_replaces_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stagepass/config.toml");
    let keycloak = [
        "config",
        "init",
        "--preset",
        "keycloak",
        "--domain",
        "sso.example.com",
        "--realm",
        "eng",
        "--client-id",
        "stagepass",
    ];
    let run = stagepass(&config, &keycloak);
    run.assert_ok();
    run.assert_stderr_contains("profile `keycloak` created");
    run.assert_stderr_contains("stagepass doctor keycloak");

    // The user's own content around it survives every later edit.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n# my own note\n[profiles.home]\nissuer = \"https://home.example\"\nclient_id = \"h\"\n",
    );
    std::fs::write(&config, &text).unwrap();

    let run = stagepass(
        &config,
        &[
            "config",
            "init",
            "--preset",
            "okta",
            "--domain",
            "example.okta.com",
            "--client-id",
            "o",
        ],
    );
    run.assert_ok();
    run.assert_stderr_contains("profile `okta` added to");

    let again = stagepass(&config, &keycloak);
    again.assert_code(3);
    again.assert_stderr_contains("profile `keycloak` already exists; pass --force");
    assert_eq!(
        std::fs::read_to_string(&config)
            .unwrap()
            .matches("[profiles.")
            .count(),
        3
    );

    let mut forced: Vec<&str> = keycloak.to_vec();
    forced[7] = "platform";
    forced.push("--force");
    stagepass(&config, &forced).assert_ok();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("# my own note"), "{text}");
    assert!(
        text.contains("# issuer = \"https://sso.example.com/realms/eng\""),
        "the replaced profile is kept, commented out:\n{text}"
    );
    assert!(
        text.contains("issuer = \"https://sso.example.com/realms/platform\""),
        "{text}"
    );
    assert!(
        text.contains("[profiles.home]") && text.contains("[profiles.okta]"),
        "{text}"
    );
    assert!(
        !text.contains("secret"),
        "no secret is ever written:\n{text}"
    );
}

#[test]
fn a_generic_profile_from_init_passes_doctor_against_the_test_idp() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config("init-generic", "");
    let run = sandbox.run(&[
        "config",
        "init",
        "--preset",
        "generic",
        "--name",
        "init-generic",
        "--issuer",
        &idp.issuer,
        "--client-id",
        CLIENT_ID,
        "--audience",
        support::AUDIENCE,
        "--force",
    ]);
    run.assert_ok();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let doctor = sandbox.run(&["doctor", "--proxy-port", &port]);
    doctor.assert_ok();
    assert!(doctor.stdout().contains("0 failed"), "{}", doctor.stdout());
}
