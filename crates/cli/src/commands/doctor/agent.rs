//! The agent check and the token checks, which ask the agent for the claims of the tokens
//! it holds (never the tokens).

use std::path::Path;

use stagepass_client::{Client, Interaction, TokenRequest};
use stagepass_core::config::Profile;
use stagepass_core::doctor::{Check, HeldTokens, ids, token_checks as claim_checks};
use stagepass_proto::{ClaimsReport, TokenKind};

use crate::agent_link;
use crate::error::{CommandError, Kind};

/// The agent check; returns the agent's pid when one runs (started now if none did).
pub fn agent_check(config_path: &Path, report: &mut super::Report) -> Option<u32> {
    let status = agent_link::call(Client::status);
    let (status, started) = match status {
        Ok(found) => found,
        Err(err) => {
            report.add(
                Check::fail(ids::AGENT, "the agent cannot be reached or started")
                    .evidence(err.to_string())
                    .fix("run `stagepass agent` in a terminal to see why it does not start"),
            );
            return None;
        }
    };
    let ours = env!("CARGO_PKG_VERSION");
    let mut check = if status.agent_version != ours {
        Check::warn(
            ids::AGENT,
            format!(
                "the agent runs version {}, this command is {ours}",
                status.agent_version
            ),
        )
        .fix("`stagepass agent stop`; the next command starts the installed version")
    } else if Path::new(&status.config_path) != config_path {
        Check::warn(
            ids::AGENT,
            "the agent reads another config file than this shell's",
        )
        .evidence(format!("agent: {}", status.config_path))
        .evidence(format!("this shell: {}", config_path.display()))
        .fix("the agent started with another STAGEPASS_CONFIG: `stagepass agent stop` and retry")
    } else {
        Check::ok(
            ids::AGENT,
            format!(
                "the agent runs (pid {}, version {})",
                status.agent_pid, status.agent_version
            ),
        )
    };
    if started {
        check = check.evidence("no agent was running: doctor started one");
    }
    report.add(check);
    Some(status.agent_pid)
}

fn claims(name: &str) -> Result<ClaimsReport, CommandError> {
    let (report, _) = agent_link::call(|client| client.claims(Some(name.to_string())))?;
    Ok(report)
}

fn needs_sign_in(err: &CommandError) -> bool {
    err.kind() == Kind::NeedsSignIn
}

/// token.session, then (when signed in) the claim checks of the profile's tokens.
pub fn token_checks(name: &str, profile: &Profile) -> Vec<Check> {
    let sign_in_first = || {
        Check::warn(
            ids::TOKEN_SESSION,
            "not signed in: sign in first to check the audience, scopes, groups and lifetimes \
             of the tokens",
        )
        .for_profile(name)
        .fix(format!(
            "`stagepass login {name}`, then `stagepass doctor {name}`"
        ))
    };
    let mut report = match claims(name) {
        Ok(report) => report,
        Err(err) if needs_sign_in(&err) => return vec![sign_in_first()],
        Err(err) => {
            return vec![
                Check::warn(ids::TOKEN_SESSION, "the agent cannot say what it holds")
                    .for_profile(name)
                    .evidence(err.to_string()),
            ];
        }
    };
    if report.access_token.is_none() {
        // Signed in, but no access token in memory yet (a fresh agent): have the agent
        // fetch one, so its claims can be checked. The token itself is dropped unread.
        let request = TokenRequest {
            profile: Some(name.to_string()),
            kind: TokenKind::Access,
            min_valid_secs: 0,
        };
        let fetched = agent_link::call(|client| client.get_token(&request, Interaction::None));
        match fetched {
            Ok(_) => {
                if let Ok(again) = claims(name) {
                    report = again;
                }
            }
            Err(err) if needs_sign_in(&err) => return vec![sign_in_first()],
            Err(err) => {
                return vec![
                    Check::warn(
                        ids::TOKEN_SESSION,
                        "signed in, but no access token could be had",
                    )
                    .for_profile(name)
                    .evidence(err.to_string()),
                ];
            }
        }
    }
    let id_claims = report.id_token.as_ref().map(|set| &set.claims);
    // GitHub has no id_token: its user (`GET /user`) says who signed in.
    let user_claims = report.user.as_ref().map(|set| &set.claims);
    let who = id_claims
        .or(user_claims)
        .and_then(|claims| {
            claims
                .get("email")
                .filter(|email| email.is_string())
                .or_else(|| claims.get("login"))
                .or_else(|| claims.get("sub"))
        })
        .and_then(|who| who.as_str())
        .unwrap_or("an unknown user");
    let mut checks =
        vec![Check::ok(ids::TOKEN_SESSION, format!("signed in as {who}")).for_profile(name)];
    checks.extend(claim_checks(
        name,
        profile,
        HeldTokens {
            access_claims: report.access_token.as_ref().map(|set| &set.claims),
            id_claims,
            refresh_token: report.refresh_token,
        },
    ));
    checks
}
