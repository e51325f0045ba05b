use serde_json::{Value, json};
use stagepass_proto::ClaimSet;

use stagepass_core::text::one_line;

use crate::agent_link;
use crate::cli::ProfileJsonArgs;
use crate::error::CommandError;
use crate::output::{print_json, rfc3339, when};

/// Claims holding Unix times, shown as dates.
const TIME_CLAIMS: &[&str] = &["exp", "iat", "nbf", "auth_time", "updated_at"];

pub fn run(args: ProfileJsonArgs) -> Result<(), CommandError> {
    let profile = &args.profile.profile;
    let (report, _) = agent_link::call(|client| client.claims(profile.clone()))?;
    if args.json.json {
        print_json(&json!({
            "profile": report.profile,
            "id_token": report.id_token.as_ref().map(set_json),
            "access_token": report.access_token.as_ref().map(set_json),
            "user": report.user.as_ref().map(set_json),
        }))?;
        return Ok(());
    }
    outln!("profile {}", report.profile);
    if report.user.is_some() {
        print_set("user", report.user.as_ref())?;
    }
    print_set("id_token", report.id_token.as_ref())?;
    print_set("access token", report.access_token.as_ref())?;
    Ok(())
}

fn set_json(set: &ClaimSet) -> Value {
    json!({
        "verified": set.verified,
        "verified_at": set.verified_at.map(rfc3339),
        "note": set.note,
        "claims": set.claims,
    })
}

fn print_set(title: &str, set: Option<&ClaimSet>) -> Result<(), CommandError> {
    outln!();
    let Some(set) = set else {
        outln!("{title}: none (opaque or not held)");
        return Ok(());
    };
    let mark = match (set.verified, set.verified_at) {
        (true, Some(at)) => format!("verified {}", when(at)),
        (true, None) => "verified".into(),
        (false, _) => "UNVERIFIED".into(),
    };
    outln!("{title} [{mark}: {}]", set.note);
    let Some(claims) = set.claims.as_object() else {
        return Ok(());
    };
    let width = claims.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in claims {
        let shown = match (value.as_u64(), TIME_CLAIMS.contains(&name.as_str())) {
            (Some(unix), true) => when(unix),
            _ => match value {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map_or_else(|| item.to_string(), String::from))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            },
        };
        // One line per claim, whatever the IdP put in it.
        outln!("  {name:width$}  {}", one_line(&shown));
    }
    Ok(())
}
