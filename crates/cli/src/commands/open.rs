//! `stagepass open [ROUTE] [--print]`: a proxy route in the browser, through a one-time launch
//! URL the agent mints (the browser trades it for the route's session cookie).

use crate::agent_link;
use crate::browser;
use crate::cli::OpenArgs;
use crate::error::CommandError;

pub fn run(args: OpenArgs) -> Result<(), CommandError> {
    let (launch, _) = agent_link::call(|client| client.proxy_launch(args.route.clone()))?;
    let url = match &args.path {
        Some(path) => format!("{}&next={}", launch.url.expose(), landing(path)?),
        None => launch.url.expose().clone(),
    };
    let url = url.as_str();
    if args.print || !browser::available() {
        // stdout: for a script to hand on; it works once, for a minute.
        outln!("{url}");
        errln!(
            "open this once, within a minute, in the browser to use route {}",
            launch.route
        );
        return Ok(());
    }
    // The launch URL stays out of the browser's argv (see browser::open); its redirect page
    // is left for the next open to sweep, since the browser may read it after this exits.
    browser::open(url).map_err(|err| {
        CommandError::from(std::io::Error::new(
            err.kind(),
            format!("cannot start the browser: {err}; use --print"),
        ))
    })?;
    errln!("opened route {} in the browser", launch.route);
    Ok(())
}

/// `--path`, checked and with what a URL query cannot hold as is percent-encoded.
fn landing(path: &str) -> Result<String, CommandError> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(CommandError::usage(format!(
            "--path {path}: use a path that starts with a single `/`, such as /catalog"
        )));
    }
    Ok(path
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect())
}
