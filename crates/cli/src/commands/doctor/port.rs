//! proxy.port: the local proxy's port must be free, or held by our own agent.
//! proxy.routes: routes a browser uses should not share one origin.

use std::net::TcpListener;

use stagepass_core::config::Config;
use stagepass_core::doctor::{Check, ids};
use stagepass_core::proxy_config::Local;

/// Path routes all live on `http://127.0.0.1:PORT`: one browser origin, so a page of one
/// (or a script in it) can call every other with the session cookie. Host routes
/// (`NAME.localhost`) are an origin each. `None` without routes.
pub fn routes_check(config: &Config) -> Option<Check> {
    if config.routes.is_empty() {
        return None;
    }
    let paths: Vec<&str> = config
        .routes
        .iter()
        .filter(|route| matches!(route.local, Local::Path(_)))
        .map(|route| route.name.as_str())
        .collect();
    if paths.len() < 2 {
        return Some(Check::ok(
            ids::PROXY_ROUTES,
            "each route has a browser origin of its own",
        ));
    }
    Some(
        Check::warn(
            ids::PROXY_ROUTES,
            format!(
                "path routes {} share one browser origin: a page of one can call the others \
                 with the browser's session",
                paths.join(", ")
            ),
        )
        .evidence(format!(
            "all served at http://127.0.0.1:{}/…",
            config.proxy.port
        ))
        .fix(
            "for routes used from a browser, set `host = \"NAME.localhost\"` instead of `path` \
             in their [[route]] (an origin of their own); path routes suit curl and scripts",
        ),
    )
}

pub fn proxy_port_check(port: u16, agent_pid: Option<u32>) -> Check {
    let not_yet = "the agent's local proxy listens here when the config has [[route]] tables";
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => {
            drop(listener);
            Check::ok(
                ids::PROXY_PORT,
                format!("127.0.0.1:{port} is free for the local proxy"),
            )
            .evidence(not_yet)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            let owner = listener_owner(port);
            if let (Some((pid, _)), Some(agent)) = (&owner, agent_pid)
                && *pid == agent
            {
                return Check::ok(
                    ids::PROXY_PORT,
                    format!("127.0.0.1:{port} is held by the stagepass agent (pid {agent})"),
                );
            }
            let by = match &owner {
                Some((pid, program)) => format!("{program} (pid {pid})"),
                None => "another program (not the stagepass agent)".to_string(),
            };
            Check::warn(
                ids::PROXY_PORT,
                format!("port {port} is in use by {by}: the local proxy could not listen there"),
            )
            .evidence(not_yet)
            .evidence(format!("binding 127.0.0.1:{port}: {err}"))
            .fix(format!(
                "stop {by}, or choose another port for the proxy (check it with `stagepass \
                 doctor --proxy-port PORT`)"
            ))
        }
        Err(err) => Check::warn(
            ids::PROXY_PORT,
            format!("127.0.0.1:{port} cannot be bound: {err}"),
        )
        .evidence(not_yet),
    }
}

/// The process listening on `port`, found through /proc (only our own processes are
/// visible, which is all that matters for "is it ours").
#[cfg(target_os = "linux")]
fn listener_owner(port: u16) -> Option<(u32, String)> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local_port = fields.get(1)?.rsplit(':').next()?;
                    let listening = *fields.get(3)? == "0A";
                    (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                        .then(|| fields.get(9).map(|inode| inode.to_string()))
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                wanted
                    .iter()
                    .any(|wanted| target.as_os_str() == wanted.as_str())
            })
        });
        if holds {
            let program = std::fs::read_to_string(process.path().join("comm"))
                .map(|comm| comm.trim().to_string())
                .unwrap_or_else(|_| "a program".into());
            return Some((pid, program));
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn listener_owner(_port: u16) -> Option<(u32, String)> {
    None
}
