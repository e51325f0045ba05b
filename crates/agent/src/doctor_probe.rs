//! `stagepass-agent --doctor-probe`: the checks of `stagepass doctor` that need the network or
//! the keychain, run in a child of the agent binary.
//!
//! Why here: the HTTP and keychain stacks would triple the `stagepass` binary and slow every
//! start of it, which git may pay several times per command. The agent binary carries them
//! anyway. The probe holds no tokens and talks to no running agent: it reads the profiles to
//! check on stdin and writes one JSON [`Check`] per line to stdout as each completes.

use std::io::Write;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use stagepass_core::ClientSecret;
use stagepass_core::config::Profile;
use stagepass_core::doctor::{Check, backstage_client_check, idp_checks, keychain_round_trip};
use stagepass_core::http::{HttpClient, HttpLimits};
use stagepass_core::profile::ClientAuth;
use stagepass_core::store::{LoginStore, OsKeychain};

/// The flag that turns `stagepass-agent` into a doctor probe.
pub const DOCTOR_PROBE_FLAG: &str = "--doctor-probe";

/// What `stagepass doctor` asks the probe to check.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub profiles: Vec<(String, Profile)>,
}

/// Entry point of `stagepass-agent --doctor-probe`.
pub fn doctor_probe_main() -> ExitCode {
    let Ok(input) = crate::child_request::read_stdin() else {
        return ExitCode::FAILURE;
    };
    let request: ProbeRequest = match serde_json::from_slice(&input) {
        Ok(request) => request,
        Err(err) => {
            eprintln!("stagepass-agent: unreadable doctor probe request: {err}");
            return ExitCode::FAILURE;
        }
    };
    match probe(request, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // Doctor went away (a closed pipe): nobody is left to tell.
        Err(_) => ExitCode::FAILURE,
    }
}

fn probe(request: ProbeRequest, out: &mut impl Write) -> std::io::Result<()> {
    let mut emit = |check: Check| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, &check)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let keychain = std::sync::Arc::new(OsKeychain::new());
    let logins = LoginStore::new(keychain.clone());
    match HttpClient::new(HttpLimits::default()) {
        Ok(http) => {
            for (name, profile) in &request.profiles {
                let secret = client_secret(&logins, name, profile);
                for check in runtime.block_on(idp_checks(name, profile, secret, &http)) {
                    emit(check)?;
                }
                if let Some(check) = backstage_client_check(name, profile) {
                    emit(check)?;
                }
            }
        }
        Err(err) => {
            for (name, _) in &request.profiles {
                emit(
                    Check::fail(
                        stagepass_core::doctor::ids::IDP_DISCOVERY,
                        "cannot set up HTTP",
                    )
                    .for_profile(name)
                    .evidence(err.to_string()),
                )?;
            }
        }
    }
    emit(keychain_round_trip(keychain.as_ref()))?;
    Ok(())
}

/// A confidential client's secret, when the keychain can give it; an unreadable keychain
/// shows up in the keychain check.
fn client_secret(logins: &LoginStore, name: &str, profile: &Profile) -> Option<ClientSecret> {
    if profile.client_auth() == ClientAuth::None {
        return None;
    }
    logins.load_client_secret(name).ok().flatten()
}
