use stagepass_proto::{Request, Response};

use super::expect_response;
use crate::agent_link;
use crate::cli::ProfileArg;
use crate::error::CommandError;

pub fn run(args: ProfileArg) -> Result<(), CommandError> {
    let (response, _) = agent_link::call(&Request::Logout {
        profile: args.profile,
    })?;
    let report = expect_response!(response, Response::SignedOut)?;
    if report.revoked {
        outln!(
            "Signed out of {}; the IdP revoked the refresh token.",
            report.profile
        );
    } else {
        outln!("Signed out of {}.", report.profile);
    }
    if let Some(note) = report.note {
        errln!("note: {note}");
    }
    Ok(())
}
