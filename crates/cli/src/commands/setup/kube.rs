//! `setup kube [PROFILE]`: a kubeconfig user `stagepass-PROFILE` whose exec entry runs
//! `stagepass kube-credential PROFILE`, written through `kubectl config` so the kubeconfig's
//! other content and formatting rules stay kubectl's business.

use std::process::Command;

use stagepass_core::config::Config;

use super::{show, this_program};
use crate::error::CommandError;

pub fn run(config: &Config, profile: Option<&str>, undo: bool) -> Result<(), CommandError> {
    let (name, _) = config
        .profile(profile)
        // The kubeconfig user is made for a profile of the config: one it cannot pick is the
        // config's problem (exit 3), not a bad flag.
        .map_err(|err| CommandError::config(err.to_string()).with_source(err))?;
    let user = format!("stagepass-{name}");
    if undo {
        kubectl(&["config", "unset", &format!("users.{user}")])?;
        show('-', &format!("kubeconfig user {user}"))?;
        return Ok(());
    }
    let program = this_program()?;
    let api_version = api_version();
    let command = format!("--exec-command={program}");
    let version = format!("--exec-api-version={api_version}");
    let profile_arg = format!("--exec-arg={name}");
    let mut args = vec![
        "config",
        "set-credentials",
        &user,
        &command,
        &version,
        "--exec-arg=kube-credential",
        &profile_arg,
    ];
    // v1 requires interactiveMode; kubectl before 1.22 (v1beta1) knows no such flag.
    if api_version.ends_with("/v1") {
        args.push("--exec-interactive-mode=IfAvailable");
    }
    kubectl(&args)?;
    show(
        '+',
        &format!("kubeconfig user {user}: exec {program} kube-credential {name}"),
    )?;
    outln!(
        "  use it in a context: kubectl config set-context CONTEXT --user={user} --cluster=CLUSTER"
    );
    Ok(())
}

/// `v1` where kubectl knows it (1.22 and later); Debian 12's kubectl 1.20 knows `v1beta1`.
fn api_version() -> &'static str {
    let version = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|output| serde_json::from_slice::<serde_json::Value>(&output.stdout).ok());
    let minor = version
        .as_ref()
        .and_then(|v| v["clientVersion"]["minor"].as_str())
        .and_then(|minor| minor.trim_end_matches('+').parse::<u32>().ok());
    match minor {
        Some(minor) if minor < 22 => "client.authentication.k8s.io/v1beta1",
        _ => "client.authentication.k8s.io/v1",
    }
}

fn kubectl(args: &[&str]) -> Result<(), CommandError> {
    let output = Command::new("kubectl").args(args).output().map_err(|err| {
        CommandError::from(std::io::Error::new(
            err.kind(),
            format!("cannot run kubectl: {err}; install kubectl first"),
        ))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(CommandError::usage(format!(
            "`kubectl {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
