//! The IdP and keychain checks, run by `stagepass-agent --doctor-probe` so that the HTTP and
//! keychain stacks stay out of this binary (see `stagepass_agent::doctor_probe_main`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use stagepass_agent::{DOCTOR_PROBE_FLAG, ProbeRequest};
use stagepass_core::config::Profile;
use stagepass_core::doctor::{Check, ids};

use crate::agent_link::agent_program;

/// Runs the probe and hands over each check as it arrives. Failing to run it at all is a
/// failed check per profile (and for the keychain), never a crash of doctor.
pub fn run_probe(profiles: &[(String, Profile)], mut add: impl FnMut(Check)) {
    if let Err(err) = try_run_probe(profiles, &mut add) {
        let cannot = |id, profile: Option<&str>| {
            let check = Check::fail(id, "cannot run the network and keychain checks")
                .evidence(err.clone())
                .fix("install `stagepass-agent` next to `stagepass` (the two ship together)");
            match profile {
                Some(name) => check.for_profile(name),
                None => check,
            }
        };
        for (name, _) in profiles {
            add(cannot(ids::IDP_DISCOVERY, Some(name)));
        }
        add(cannot(ids::KEYCHAIN, None));
    }
}

fn try_run_probe(
    profiles: &[(String, Profile)],
    add: &mut impl FnMut(Check),
) -> Result<(), String> {
    let program = agent_program().map_err(|err| err.to_string())?;
    let mut child = Command::new(&program)
        .arg(DOCTOR_PROBE_FLAG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", program.display()))?;
    let request = ProbeRequest {
        profiles: profiles.to_vec(),
    };
    let written = child
        .stdin
        .take()
        .map(|mut stdin| {
            serde_json::to_writer(&mut stdin, &request)
                .map_err(std::io::Error::from)
                .and_then(|()| stdin.flush())
        })
        .transpose();
    let mut seen = 0;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|err| format!("reading {}: {err}", program.display()))?;
            let check: Check = serde_json::from_str(&line)
                .map_err(|err| format!("{} answered garbage: {err}", program.display()))?;
            add(check);
            seen += 1;
        }
    }
    let status = child.wait().map_err(|err| err.to_string())?;
    written.map_err(|err| format!("writing to {}: {err}", program.display()))?;
    if seen == 0 || !status.success() {
        return Err(format!(
            "{} {DOCTOR_PROBE_FLAG} ended with {status}",
            program.display()
        ));
    }
    Ok(())
}
