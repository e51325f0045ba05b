//! `stagepass doctor`: runs the checks in order and prints each as it completes. The IdP,
//! token and keychain checks live in `stagepass_core::doctor`; the IdP and keychain ones run
//! in `stagepass-agent --doctor-probe` (see `probe`). What needs the agent, local ports or
//! other programs' config lives here.

mod agent;
mod helpers;
mod port;
mod probe;
mod report;

use std::path::Path;

use stagepass_core::config::{Config, Profile, ProfileKind, ViaProfile};
use stagepass_core::doctor::{Check, ids};
use stagepass_core::paths;

use crate::cli::DoctorArgs;
use crate::error::CommandError;
use report::Report;

pub fn run(args: DoctorArgs) -> Result<(), CommandError> {
    let mut report = Report::new(args.json);
    let config_path = paths::config_file();
    let profiles = config_checks(&config_path, args.profile.as_deref(), &mut report);

    // A Backstage behind a proxy has no IdP of its own to probe: its IdP profile's checks
    // cover the sign-in. GitHub has no discovery document to probe.
    let (through_proxy, probed): (Vec<_>, Vec<_>) = profiles
        .iter()
        .cloned()
        .partition(|(_, profile)| profile.via().is_some() || profile.github_url().is_some());
    for (name, profile) in &through_proxy {
        if let Some(url) = profile.github_url() {
            report.add(
                Check::info(
                    ids::IDP_DISCOVERY,
                    "GitHub has fixed OAuth endpoints and no discovery document to check",
                )
                .for_profile(name)
                .evidence(format!(
                    "{url}/login/oauth/access_token; `stagepass login {name}` shows what GitHub says"
                )),
            );
        }
        if let ProfileKind::Backstage {
            url,
            via: Some(via),
            ..
        } = &profile.kind
        {
            let ViaProfile {
                profile: via,
                auth_provider: provider,
            } = via;
            report.add(
                Check::info(
                    ids::IDP_DISCOVERY,
                    format!("signs in through `{via}`; its checks cover the IdP"),
                )
                .for_profile(name)
                .evidence(format!(
                    "Backstage's `{provider}` provider at {url} behind an identity-aware proxy"
                )),
            );
        }
    }
    // The keychain check runs in the probe too, but reads better after the agent's.
    let mut keychain = None;
    probe::run_probe(&probed, |check| {
        if check.check == ids::KEYCHAIN {
            keychain = Some(check);
        } else {
            report.add(check);
        }
    });

    let agent_pid = agent::agent_check(&config_path, &mut report);
    for (name, profile) in &profiles {
        if agent_pid.is_some() {
            for check in agent::token_checks(name, profile) {
                report.add(check);
            }
        } else {
            report.add(
                Check::skip(ids::TOKEN_SESSION, "needs the agent (see agent)").for_profile(name),
            );
        }
    }

    if let Some(check) = keychain {
        report.add(check);
    }
    let proxy_port = args.proxy_port.unwrap_or_else(|| {
        stagepass_core::config::Config::load(&config_path)
            .map_or(stagepass_core::doctor::DEFAULT_PROXY_PORT, |config| {
                config.proxy.port
            })
    });
    report.add(port::proxy_port_check(proxy_port, agent_pid));
    let config = Config::load(&config_path).ok();
    if let Some(check) = config.as_ref().and_then(port::routes_check) {
        report.add(check);
    }
    for check in helpers::helper_checks(config.as_ref()) {
        report.add(check);
    }
    report.finish()
}

/// config.file and config.profile; returns the profiles to check.
fn config_checks(path: &Path, wanted: Option<&str>, report: &mut Report) -> Vec<(String, Profile)> {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => {
            let missing = !path.exists();
            let mut check = Check::fail(
                ids::CONFIG_FILE,
                if missing {
                    "there is no config file"
                } else {
                    "the config file does not parse"
                },
            )
            .evidence(err.to_string());
            check = check.fix(if missing {
                format!(
                    "create one: `stagepass config init --preset PRESET …` (or point {} at one)",
                    paths::CONFIG_ENV
                )
            } else {
                format!("edit {} as the message says", path.display())
            });
            report.add(check);
            report.add(Check::skip(
                ids::CONFIG_PROFILE,
                "needs a config file that parses",
            ));
            return Vec::new();
        }
    };
    let names: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
    report.add(
        Check::ok(
            ids::CONFIG_FILE,
            format!(
                "{} parses: {} profile(s) ({})",
                path.display(),
                names.len(),
                names.join(", ")
            ),
        )
        .evidence(if std::env::var_os(paths::CONFIG_ENV).is_some() {
            format!("path from ${}", paths::CONFIG_ENV)
        } else {
            "the default path".to_string()
        }),
    );
    match wanted {
        Some(name) => {
            match config.profile(Some(name)) {
                Ok((name, profile)) => {
                    report.add(Check::ok(
                        ids::CONFIG_PROFILE,
                        format!("checking profile `{name}`"),
                    ));
                    vec![(name.to_string(), profile.clone())]
                }
                Err(err) => {
                    report.add(
                    Check::fail(ids::CONFIG_PROFILE, format!("no profile named `{name}`"))
                        .evidence(err.to_string())
                        .fix("name one of the config's profiles, or leave the name out to check all"),
                );
                    Vec::new()
                }
            }
        }
        None if config.profiles.is_empty() => {
            report.add(
                Check::fail(ids::CONFIG_PROFILE, "the config defines no profile")
                    .fix("add one: `stagepass config init --preset PRESET …`"),
            );
            Vec::new()
        }
        None => {
            report.add(Check::ok(
                ids::CONFIG_PROFILE,
                format!("checking every profile: {}", names.join(", ")),
            ));
            config.profiles.into_iter().collect()
        }
    }
}
