use std::io::Write;

use serde_json::json;
use stagepass_proto::{Request, Response, TokenKind};

use super::expect_response;
use crate::agent_link;
use crate::cli::TokenArgs;
use crate::exit::CliError;
use crate::output::rfc3339;

pub fn run(args: TokenArgs) -> Result<(), CliError> {
    let (mut client, _) = agent_link::connect()?;
    let response = client.call(&Request::GetToken {
        profile: args.profile.profile,
        kind: if args.id_token {
            TokenKind::Id
        } else {
            TokenKind::Access
        },
        min_valid_secs: args.min_valid,
    })?;
    let grant = expect_response!(response, Response::Token)?;
    let text = if args.json {
        json!({
            "token": grant.token.expose(),
            "expires_at": grant.expires_at.map(rfc3339),
            "token_type": grant.token_type,
            "profile": grant.profile,
        })
        .to_string()
    } else {
        grant.token.expose().clone()
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}
