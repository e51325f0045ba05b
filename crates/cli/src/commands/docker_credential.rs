//! `docker-credential-stagepass get|store|erase|list`: the docker credential helper protocol
//! (<https://github.com/docker/docker-credential-helpers>), served from the agent.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use stagepass_core::config::Config;
use stagepass_core::credential_map::DEFAULT_USERNAME;
use stagepass_core::paths;
use stagepass_proto::Tool;

use crate::agent_link;
use crate::error::{CommandError, Kind};

/// What docker reads as "no credentials here" (and then tries anonymous access).
const NOT_FOUND: &str = "credentials not found in native keychain";
const MAX_INPUT: u64 = 64 * 1024;

pub fn run(action: &str) -> Result<(), CommandError> {
    agent_link::set_consumer("docker");
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut input)?;
    match action {
        "get" => get(input.trim()),
        // docker offers credentials from `docker login`; stagepass keeps none, and a
        // `docker logout` does not sign the user out of the IdP.
        "store" | "erase" => Ok(()),
        "list" => list(),
        other => Err(CommandError::usage(format!(
            "unknown docker credential action `{other}`: docker calls this helper with get, store, erase or list"
        ))),
    }
}

fn get(server: &str) -> Result<(), CommandError> {
    let credential = agent_link::ask(agent_link::can_interact(), |client, interaction| {
        client.credential(Tool::Docker, server.to_string(), false, interaction)
    })?;
    let Some(credential) = credential else {
        // The protocol's "not found": the message on stdout, exit code 1.
        outln!("{NOT_FOUND}");
        return Err(CommandError::new(Kind::NoCredential, NOT_FOUND));
    };
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer<'a> {
        #[serde(rename = "ServerURL")]
        server_url: &'a str,
        username: &'a str,
        secret: &'a str,
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(
        &mut stdout,
        &Answer {
            server_url: server,
            username: &credential.username,
            secret: credential.grant.token.expose(),
        },
    )
    .map_err(std::io::Error::from)?;
    writeln!(stdout)?;
    Ok(())
}

/// The mapped registries and their usernames, from the config (no token involved).
fn list() -> Result<(), CommandError> {
    let config = Config::load(&paths::config_file())?;
    let listed: BTreeMap<&str, &str> = config
        .docker
        .iter()
        .map(|entry| {
            (
                entry.registry.as_str(),
                entry.username.as_deref().unwrap_or(DEFAULT_USERNAME),
            )
        })
        .collect();
    outln!(
        "{}",
        serde_json::to_string(&listed).map_err(std::io::Error::from)?
    );
    Ok(())
}
