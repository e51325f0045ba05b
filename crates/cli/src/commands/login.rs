use serde_json::json;
use stagepass_proto::Flow;

use crate::agent_link;
use crate::browser;
use crate::cli::LoginArgs;
use crate::error::CommandError;
use crate::output::rfc3339;
use crate::progress;

pub fn run(args: LoginArgs) -> Result<(), CommandError> {
    let (mut client, _) = agent_link::connect()?;
    let flow = match (args.device, args.browser) {
        (true, _) => Some(Flow::Device),
        (_, true) => Some(Flow::Browser),
        _ => None,
    };
    let browser_available = browser::available();
    let signed_in = progress::sign_in(&mut client, args.json, !args.no_open, |client, steps| {
        client.login(args.profile.profile.clone(), flow, browser_available, steps)
    })?;
    let who = signed_in.email.as_deref().or(signed_in.subject.as_deref());
    if args.json {
        outln!(
            "{}",
            json!({
                "step": "signed_in",
                "profile": signed_in.name,
                "subject": signed_in.subject,
                "email": signed_in.email,
                "access_token_expires_at": signed_in.access_token_expires_at.map(rfc3339),
            })
        );
    } else {
        match who {
            Some(who) => outln!("Signed in to {} as {who}.", signed_in.name),
            None => outln!("Signed in to {}.", signed_in.name),
        }
    }
    Ok(())
}
