//! helper.git, helper.docker, helper.kubectl: whether those programs are configured to get
//! credentials from stagepass. A host mapped in the config (`[[git]]`, `[[docker]]`) that the
//! tool does not send to stagepass is a warning; with no mapping, "not configured" is
//! information, not a failure.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use stagepass_core::config::Config;
use stagepass_core::doctor::{Check, Status, ids};
use stagepass_core::platform;
use stagepass_core::tool_files::{DOCKER_HELPER, GIT_HELPER, ToolEnv};

pub fn helper_checks(config: Option<&Config>) -> Vec<Check> {
    let git_hosts: Vec<String> = config.map_or_else(Vec::new, |config| {
        config
            .git
            .iter()
            .map(|host| host.url.trim_end_matches('/').to_string())
            .collect()
    });
    let registries: Vec<String> = config.map_or_else(Vec::new, |config| {
        config
            .docker
            .iter()
            .map(|entry| entry.registry.clone())
            .collect()
    });
    vec![
        git_check(&git_hosts),
        docker_check(&registries),
        kubectl_check(),
    ]
}

/// A warning naming the mapped hosts the tool does not send to stagepass.
fn unset_mapped(check: &'static str, tool: &str, missing: &[&String]) -> Check {
    let names: Vec<&str> = missing.iter().map(|name| name.as_str()).collect();
    Check::warn(
        check,
        format!(
            "{tool} does not ask stagepass for {}, mapped in the config",
            names.join(", ")
        ),
    )
    .fix(format!("stagepass setup {tool}"))
}

/// `program` when it is a path, else the first match on PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    platform::find_on_path(program)
}

/// Runs a program for its stdout; `None` when it is not installed.
fn output_of(program: &str, args: &[&str]) -> Option<std::process::Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
}

/// Adds a warning when the helper program a configuration names is not installed.
fn require_helper(check: Check, program: &str) -> Check {
    if find_program(program).is_some() {
        return check;
    }
    Check {
        status: Status::Warn,
        summary: format!("{}, but `{program}` is not installed", check.summary),
        evidence: vec![format!("{program} is not on PATH")],
        fix: Some(format!(
            "install stagepass's {program} next to `stagepass`, or remove the configuration"
        )),
        ..check
    }
}

fn git_check(mapped: &[String]) -> Check {
    let Some(output) = output_of(
        "git",
        &["config", "--get-regexp", r"^credential\..*helper$"],
    ) else {
        return Check::info(ids::HELPER_GIT, "git is not installed");
    };
    let entries: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let missing: Vec<&String> = mapped
        .iter()
        .filter(|url| {
            let key = format!("credential.{url}.helper");
            !entries
                .iter()
                .any(|(entry, helper)| *entry == key && helper.contains("stagepass"))
        })
        .collect();
    if !missing.is_empty() {
        return unset_mapped(ids::HELPER_GIT, "git", &missing);
    }
    let ours: Vec<String> = entries
        .iter()
        .filter(|(_, helper)| helper.contains("stagepass"))
        .map(|(key, _)| {
            let host = key
                .strip_prefix("credential.")
                .and_then(|rest| rest.strip_suffix(".helper"))
                .unwrap_or("every host");
            host.to_string()
        })
        .collect();
    if ours.is_empty() {
        let mut check = Check::info(ids::HELPER_GIT, "git is not configured to use stagepass");
        for (key, helper) in &entries {
            check = check.evidence(format!("{key} = {helper}"));
        }
        return check.fix(
            "git config --global credential.https://git.example.com.helper stagepass \
             (for each git host that takes the profile's tokens)",
        );
    }
    let ok = Check::ok(
        ids::HELPER_GIT,
        format!("git uses stagepass for {}", ours.join(", ")),
    );
    // `helper = stagepass` makes git look for git-credential-stagepass on PATH; the form
    // `setup git` writes without that link names this executable by path instead.
    if entries.iter().any(|(_, helper)| helper == "stagepass") {
        require_helper(ok, GIT_HELPER)
    } else {
        ok
    }
}

fn docker_check(mapped: &[String]) -> Check {
    let Some(path) = ToolEnv::current().docker_config_file() else {
        return Check::info(ids::HELPER_DOCKER, "no home directory: no docker config");
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if !mapped.is_empty() => {
            let missing: Vec<&String> = mapped.iter().collect();
            return unset_mapped(ids::HELPER_DOCKER, "docker", &missing)
                .evidence(format!("{} does not exist", path.display()));
        }
        Err(_) => {
            return Check::info(
                ids::HELPER_DOCKER,
                "docker is not configured to use stagepass (no docker config)",
            )
            .evidence(format!("{} does not exist", path.display()));
        }
    };
    let config: Value = match serde_json::from_str(&text) {
        Ok(config) => config,
        Err(err) => {
            return Check::warn(ids::HELPER_DOCKER, "the docker config is not valid JSON")
                .evidence(format!("{}: {err}", path.display()))
                .fix("fix the file: docker itself will refuse it too");
        }
    };
    let mut ours: Vec<String> = config["credHelpers"]
        .as_object()
        .map(|helpers| {
            helpers
                .iter()
                .filter(|(_, helper)| helper.as_str() == Some("stagepass"))
                .map(|(registry, _)| registry.clone())
                .collect()
        })
        .unwrap_or_default();
    if config["credsStore"].as_str() == Some("stagepass") {
        ours.push("every registry (credsStore)".into());
    }
    let missing: Vec<&String> = mapped
        .iter()
        .filter(|registry| !ours.contains(registry) && config["credsStore"] != "stagepass")
        .collect();
    if !missing.is_empty() {
        return unset_mapped(ids::HELPER_DOCKER, "docker", &missing);
    }
    if ours.is_empty() {
        return Check::info(
            ids::HELPER_DOCKER,
            "docker is not configured to use stagepass",
        )
        .evidence(format!(
            "no \"stagepass\" in credHelpers of {}",
            path.display()
        ))
        .fix(
            "add \"credHelpers\": {\"registry.example.com\": \"stagepass\"} to the docker \
                 config, for each registry that takes the profile's tokens",
        );
    }
    require_helper(
        Check::ok(
            ids::HELPER_DOCKER,
            format!("docker uses stagepass for {}", ours.join(", ")),
        ),
        DOCKER_HELPER,
    )
}

fn kubectl_check() -> Check {
    let Some(output) = output_of("kubectl", &["config", "view", "-o", "json"]) else {
        return Check::info(ids::HELPER_KUBECTL, "kubectl is not installed");
    };
    let config: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let users = config["users"].as_array().cloned().unwrap_or_default();
    let ours: Vec<(String, String)> = users
        .iter()
        .filter_map(|user| {
            let command = user["user"]["exec"]["command"].as_str()?;
            command.contains("stagepass").then(|| {
                (
                    user["name"].as_str().unwrap_or("?").to_string(),
                    command.to_string(),
                )
            })
        })
        .collect();
    let Some((_, command)) = ours.first() else {
        return Check::info(ids::HELPER_KUBECTL, "kubectl is not configured to use stagepass")
            .evidence(format!("{} kubeconfig user(s), none with a stagepass exec entry", users.len()))
            .fix(
                "kubectl config set-credentials NAME --exec-api-version=client.authentication.k8s.io/v1 \
                 --exec-command=stagepass --exec-arg=kube-credential",
            );
    };
    let names: Vec<&str> = ours.iter().map(|(name, _)| name.as_str()).collect();
    let check = Check::ok(
        ids::HELPER_KUBECTL,
        format!("kubectl uses stagepass for user(s) {}", names.join(", ")),
    );
    match find_program(command) {
        Some(_) => check,
        None => require_helper(check, command),
    }
}
