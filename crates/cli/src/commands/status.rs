use serde_json::json;
use stagepass_client::{Client, Update};
use stagepass_proto::{EventKind, ProfileStatus, ProxyStatus, SessionState};

use crate::agent_link;
use crate::cli::StatusArgs;
use crate::error::CommandError;
use crate::output::{print_json, rfc3339, when};

pub fn run(args: StatusArgs) -> Result<(), CommandError> {
    if args.watch {
        return watch(args.json.json);
    }
    let args = args.json;
    let (report, started) = agent_link::call(Client::status)?;
    if args.json {
        print_json(&json!({
            "agent": {
                "running": true,
                "started_now": started,
                "pid": report.agent_pid,
                "version": report.agent_version,
            },
            "config_path": report.config_path,
            "profiles": report.profiles.iter().map(profile_json).collect::<Vec<_>>(),
            "proxy": report.proxy,
        }))?;
        return Ok(());
    }
    outln!(
        "agent: running (pid {}, version {}{})",
        report.agent_pid,
        report.agent_version,
        if started { ", started now" } else { "" }
    );
    outln!("config: {}", report.config_path);
    if report.profiles.is_empty() {
        outln!("no profiles: add a [profiles.NAME] table to the config");
    }
    let width = report
        .profiles
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for profile in &report.profiles {
        outln!("{:width$}  {}", profile.name, describe(profile));
        for note in &profile.notes {
            outln!("{:width$}  note: {note}", "");
        }
    }
    if let Some(proxy) = &report.proxy {
        describe_proxy(proxy)?;
    }
    Ok(())
}

fn describe_proxy(proxy: &ProxyStatus) -> Result<(), CommandError> {
    match &proxy.reason {
        None if proxy.serving => outln!("proxy: serving on {}", proxy.url),
        reason => outln!(
            "proxy: NOT serving: {}",
            reason.as_deref().unwrap_or("unknown reason")
        ),
    }
    for (name, url) in &proxy.routes {
        outln!("  route {name}: {url}  (`stagepass open {name}`)");
    }
    Ok(())
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::SignedIn => "signed_in",
        SessionState::SignedOut => "signed_out",
        SessionState::NeedsSignIn => "needs_sign_in",
    }
}

fn profile_json(profile: &ProfileStatus) -> serde_json::Value {
    json!({
        "name": profile.name,
        "issuer": profile.issuer,
        "state": state_name(profile.state),
        "subject": profile.subject,
        "email": profile.email,
        "access_token_expires_at": profile.access_token_expires_at.map(rfc3339),
        "reason": profile.reason,
        "notes": profile.notes,
        "user": profile.user,
        "never_expires": profile.never_expires,
    })
}

fn describe(profile: &ProfileStatus) -> String {
    let who = profile
        .user
        .as_deref()
        .or(profile.email.as_deref())
        .or(profile.subject.as_deref())
        .map(|who| format!(" as {who}"))
        .unwrap_or_default();
    match profile.state {
        SessionState::SignedIn => {
            let expiry = match profile.access_token_expires_at {
                Some(at) => format!(" · access token expires {}", when(at)),
                None if profile.never_expires => " · access token does not expire".into(),
                None => " · no access token in memory yet (fetched on first use)".into(),
            };
            format!("signed in{who}{expiry}")
        }
        SessionState::NeedsSignIn => format!(
            "needs sign-in{who}: {} · run `stagepass login {}`",
            profile
                .reason
                .as_deref()
                .unwrap_or("the IdP rejected the login"),
            profile.name
        ),
        SessionState::SignedOut => match &profile.reason {
            Some(reason) => format!("unknown: {reason}"),
            None => format!("signed out · run `stagepass login {}`", profile.name),
        },
    }
}

/// Prints every state change the agent announces, until interrupted.
fn watch(json: bool) -> Result<(), CommandError> {
    let (mut client, _) = agent_link::connect()?;
    let mut failed = None;
    client.subscribe(|update| match show_update(json, update) {
        Ok(more) => more,
        Err(err) => {
            failed = Some(err);
            false
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// Prints one update of the agent's stream; whether to keep listening.
fn show_update(json: bool, update: Update) -> Result<bool, CommandError> {
    match update {
        Update::Snapshot(report) if json => {
            for profile in &report.profiles {
                outln!(
                    "{}",
                    json!({ "event": "snapshot", "profile": profile_json(profile) })
                );
            }
        }
        Update::Snapshot(report) => {
            for profile in &report.profiles {
                outln!("{}  {}", profile.name, describe(profile));
            }
        }
        Update::Event(event) if json => outln!(
            "{}",
            json!({ "event": event_name(event.kind), "profile": profile_json(&event.profile) })
        ),
        Update::Event(event) => outln!(
            "{}  {}: {}",
            event.profile.name,
            event_name(event.kind),
            describe(&event.profile)
        ),
    }
    use std::io::Write;
    Ok(std::io::stdout().flush().is_ok())
}

fn event_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::SignedIn => "signed_in",
        EventKind::Refreshed => "refreshed",
        EventKind::NeedsSignIn => "needs_sign_in",
        EventKind::RefreshFailing => "refresh_failing",
        EventKind::SignedOut => "signed_out",
    }
}
