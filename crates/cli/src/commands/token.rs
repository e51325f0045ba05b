use std::io::Write;

use stagepass_proto::TokenKind;

use crate::agent_link;
use crate::cli::TokenArgs;
use crate::error::CommandError;
use crate::output::rfc3339;

pub fn run(args: TokenArgs) -> Result<(), CommandError> {
    let interactive = !args.no_interactive && agent_link::can_interact();
    let kind = if args.id_token {
        TokenKind::Id
    } else {
        TokenKind::Access
    };
    let grant = agent_link::token(args.profile.profile, kind, args.min_valid, interactive)?;
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
    } else if args.header {
        writeln!(stdout, "Authorization: Bearer {}", grant.token.expose())?;
    } else {
        writeln!(stdout, "{}", grant.token.expose())?;
    }
    Ok(())
}
