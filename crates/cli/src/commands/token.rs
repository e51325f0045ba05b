use std::io::Write;

use stagepass_proto::{Request, Response, TokenKind};

use super::expect_response;
use crate::agent_link;
use crate::browser;
use crate::cli::TokenArgs;
use crate::exit::CliError;
use crate::output::rfc3339;
use crate::progress::{Progress, STEP_TIMEOUT};

pub fn run(args: TokenArgs) -> Result<(), CliError> {
    let interactive = !args.no_interactive && can_interact();
    let request = Request::GetToken {
        profile: args.profile.profile,
        kind: if args.id_token {
            TokenKind::Id
        } else {
            TokenKind::Access
        },
        min_valid_secs: args.min_valid,
        interactive,
        browser_available: interactive && browser::available(),
    };
    let response = if interactive {
        // Progress goes to stderr; stdout carries only the token.
        let (mut client, _) = agent_link::connect()?;
        let mut progress = Progress::new(false, true);
        let response =
            client.call_with_progress(&request, STEP_TIMEOUT, |step| progress.show(step));
        progress.finish();
        response?
    } else {
        agent_link::call(&request)?.0
    };
    let grant = expect_response!(response, Response::Token)?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        /// Borrows the token: the only copy is the zeroizing one in `grant`.
        #[derive(serde::Serialize)]
        struct Printed<'a> {
            token: &'a str,
            expires_at: Option<String>,
            token_type: &'a str,
            profile: &'a str,
        }
        let printed = Printed {
            token: grant.token.expose(),
            expires_at: grant.expires_at.map(rfc3339),
            token_type: &grant.token_type,
            profile: &grant.profile,
        };
        serde_json::to_writer(&mut stdout, &printed).map_err(std::io::Error::from)?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "{}", grant.token.expose())?;
    }
    Ok(())
}

/// Whether a sign-in can involve the user: not when git says no prompts, and not without a
/// terminal or a display to show a browser on.
fn can_interact() -> bool {
    use std::io::IsTerminal;
    if std::env::var_os("GIT_TERMINAL_PROMPT").is_some_and(|value| value == "0") {
        return false;
    }
    std::io::stderr().is_terminal() || browser::available()
}
