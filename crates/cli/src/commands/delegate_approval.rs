//! `stagepass delegate pending|approve|deny`: answering, from a terminal, the requests of
//! `--ask` delegations that wait for the developer (the agent's `delegation::approval`).
//! Method and path come from whoever called the proxy: escaped before they are shown.

use stagepass_client::Client;
use stagepass_core::text::one_line;
use stagepass_proto::approval::{DEFAULT_ASK_TIMEOUT_SECS, Decision, PendingRequest};

use crate::agent_link;
use crate::cli::AskArgs;
use crate::error::CommandError;
use crate::output::{parse_span, print_json, rfc3339};

/// `--ask [--ask-timeout SPAN]` as the agent takes it: `None` without `--ask`. A bare
/// number is seconds.
pub fn ask_timeout(args: &AskArgs) -> Result<Option<u64>, CommandError> {
    if !args.ask {
        return Ok(None);
    }
    let Some(text) = args.ask_timeout.as_deref() else {
        return Ok(Some(DEFAULT_ASK_TIMEOUT_SECS));
    };
    text.parse::<u64>()
        .ok()
        .or_else(|| parse_span(text))
        .map(Some)
        .ok_or_else(|| {
            CommandError::usage(format!(
                "--ask-timeout {}: use seconds or a span like 30s or 2m",
                one_line(text)
            ))
        })
}

pub fn pending(json: bool) -> Result<(), CommandError> {
    let (list, _) = agent_link::call(Client::delegate_pending)?;
    if json {
        return print_json(&serde_json::Value::Array(
            list.iter().map(pending_json).collect(),
        ));
    }
    if list.is_empty() {
        outln!("no request waits for an answer");
        return Ok(());
    }
    let now = crate::output::now_unix();
    for request in &list {
        outln!(
            "{}  {}: {} {} on route {} (outside its {}; refused in {} s)",
            request.id,
            request.delegation,
            one_line(&request.method),
            one_line(&request.path),
            request.route,
            request.missing,
            request.deadline.saturating_sub(now)
        );
    }
    outln!(
        "\nAnswer with `stagepass delegate approve ID [--always]` or `stagepass delegate deny ID`."
    );
    Ok(())
}

pub fn answer(id: &str, decision: Decision) -> Result<(), CommandError> {
    let (answered, _) =
        agent_link::call(|client| client.delegate_answer(id.to_string(), decision))?;
    for request in answered {
        let what = format!(
            "{} {} on route {} for `{}`",
            one_line(&request.method),
            one_line(&request.path),
            request.route,
            request.delegation
        );
        match decision {
            Decision::AllowOnce => outln!("allowed once: {what}"),
            Decision::AllowAlways => {
                outln!("allowed: {what}, and from now on (`stagepass delegate list` shows it)")
            }
            Decision::Deny => outln!("denied: {what}"),
        }
    }
    Ok(())
}

fn pending_json(request: &PendingRequest) -> serde_json::Value {
    // serde_json escapes control characters itself: the values stay what was sent.
    serde_json::json!({
        "id": request.id,
        "delegation": request.delegation,
        "route": request.route,
        "method": request.method,
        "path": request.path,
        "missing": request.missing,
        "since": rfc3339(request.since),
        "deadline": rfc3339(request.deadline),
    })
}
