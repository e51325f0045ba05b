//! `stagepass doctor`: runs the checks in order and prints each as it completes. The IdP,
//! token and keychain checks live in `stagepass_core::doctor`; what needs the agent, local
//! ports or other programs' config lives here.

mod agent;
mod helpers;
mod port;
mod report;

use std::path::Path;

use stagepass_core::config::{Config, Profile};
use stagepass_core::doctor::{Check, backstage_client_check, idp_checks, ids, keychain_round_trip};
use stagepass_core::http::{HttpClient, HttpLimits};
use stagepass_core::paths;
use stagepass_core::store::OsKeychain;

use crate::cli::DoctorArgs;
use crate::exit::CliError;
use report::Report;

pub fn run(args: DoctorArgs) -> Result<(), CliError> {
    let mut report = Report::new(args.json);
    let config_path = paths::config_file();
    let profiles = config_checks(&config_path, args.profile.as_deref(), &mut report);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = HttpClient::new(HttpLimits::default())
        .map_err(|err| CliError::Agent(format!("cannot set up HTTP: {err}")))?;
    for (name, profile) in &profiles {
        for check in runtime.block_on(idp_checks(name, profile, &http)) {
            report.add(check);
        }
        if let Some(check) = backstage_client_check(name, profile) {
            report.add(check);
        }
    }

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

    report.add(keychain_round_trip(&OsKeychain::new()));
    let proxy_port = args.proxy_port.unwrap_or_else(|| {
        stagepass_core::config::Config::load(&config_path)
            .map_or(stagepass_core::doctor::DEFAULT_PROXY_PORT, |config| {
                config.proxy.port
            })
    });
    report.add(port::proxy_port_check(proxy_port, agent_pid));
    let config = Config::load(&config_path).ok();
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
