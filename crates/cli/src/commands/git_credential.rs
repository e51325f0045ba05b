//! `git-credential-stagepass get|store|erase`: git's credential helper protocol, served from
//! the agent ([gitcredentials(7)](https://git-scm.com/docs/gitcredentials)).

use std::io::Read;

use stagepass_core::git_credential::{MAX_INPUT, Query, write_answer};
use stagepass_proto::Tool;

use crate::agent_link;
use crate::error::CommandError;
use crate::remote_mode;

pub fn run(action: &str) -> Result<(), CommandError> {
    agent_link::set_consumer("git");
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut input)?;
    let query = Query::parse(&input)?;
    match action {
        "get" => get(&query),
        "erase" => erase(&query),
        // git offers every credential it used to every helper; stagepass keeps nothing.
        "store" => Ok(()),
        other => Err(CommandError::usage(format!(
            "unknown git credential action `{other}`: git calls this helper with get, store or erase"
        ))),
    }
}

fn get(query: &Query) -> Result<(), CommandError> {
    // No host, nothing to say: git goes on to its next helper.
    let Some(url) = query.url() else {
        return Ok(());
    };
    let credential = match remote_mode::remote()? {
        Some(remote) => remote_mode::credential(&remote, url, query.can_take_bearer())?,
        None => {
            let bearer_ok = query.can_take_bearer();
            agent_link::ask(agent_link::can_interact(), |client, interaction| {
                client.credential(Tool::Git, url.clone(), bearer_ok, interaction)
            })?
        }
    };
    // An unmapped host gets an empty answer, so git falls through to its next helper.
    let Some(credential) = credential else {
        return Ok(());
    };
    let expiry = credential.grant.expires_at.map(|at| at.to_string());
    let token = credential.grant.token.expose();
    let mut fields: Vec<(&str, &str)> = if credential.bearer {
        vec![
            ("capability[]", "authtype"),
            ("authtype", "Bearer"),
            ("credential", token),
            // Short-lived: git must not hand it to storing helpers.
            ("ephemeral", "true"),
        ]
    } else {
        vec![("username", &credential.username), ("password", token)]
    };
    if let Some(expiry) = &expiry {
        fields.push(("password_expiry_utc", expiry));
    }
    write_answer(&fields, &mut std::io::stdout().lock())?;
    Ok(())
}

/// The server rejected what git sent: the agent refreshes before the next `get`. Never a
/// sign-out.
fn erase(query: &Query) -> Result<(), CommandError> {
    // Remote mode: the desktop agent refreshes on its own schedule; a remote key cannot
    // make it drop a token (one more thing a key could be used to do).
    if remote_mode::remote()?.is_some() {
        return Ok(());
    }
    let (Some(url), Some(token)) = (query.url(), query.password.clone()) else {
        return Ok(());
    };
    agent_link::call(|client| client.reject_credential(Tool::Git, url.clone(), token.clone()))?;
    Ok(())
}
