use stagepass_proto::{AgentError, Response, StatusReport};

use crate::errors;
use crate::session;
use crate::sessions::Agent;

pub(crate) async fn status(agent: &Agent) -> Result<Response, AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    // Loaded first, all of them: a Backstage profile behind a proxy reports its IdP profile's.
    let mut load_errors = Vec::with_capacity(config.profiles.len());
    for (name, profile) in &config.profiles {
        let session = agent.session(name, profile);
        load_errors.push(session::load_unless_busy(agent, &session).await.err());
    }
    let profiles = config
        .profiles
        .iter()
        .zip(load_errors)
        .map(|((name, profile), load_error)| {
            let session = agent.session(name, profile);
            session::profile_status(agent, &session, load_error.map(|err| err.to_string()))
        })
        .collect();
    Ok(Response::Status(StatusReport {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        agent_pid: std::process::id(),
        config_path: agent.config_path().display().to_string(),
        profiles,
        proxy: crate::proxy::status(agent),
    }))
}
