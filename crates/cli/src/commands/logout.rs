use crate::agent_link;
use crate::cli::ProfileArg;
use crate::error::CommandError;

pub fn run(args: ProfileArg) -> Result<(), CommandError> {
    let (report, _) = agent_link::call(|client| client.logout(args.profile.clone()))?;
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
