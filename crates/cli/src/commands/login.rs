use std::io::{IsTerminal, Write};
use std::process::Child;
use std::time::Duration;

use serde_json::json;
use stagepass_proto::{Flow, LoginProgress, Request, Response};

use super::expect_response;
use crate::agent_link;
use crate::browser;
use crate::cli::LoginArgs;
use crate::exit::CliError;
use crate::output::{rfc3339, when};

/// The agent sends a heartbeat every 2 s while waiting; silence this long means it is gone.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub fn run(args: LoginArgs) -> Result<(), CliError> {
    let (mut client, _) = agent_link::connect()?;
    let request = Request::Login {
        profile: args.profile.profile.clone(),
        flow: match (args.device, args.browser) {
            (true, _) => Some(Flow::Device),
            (_, true) => Some(Flow::Browser),
            _ => None,
        },
        browser_available: browser::available(),
    };
    let mut progress = Progress {
        json: args.json,
        open_browser: !args.no_open,
        spinner: !args.json && std::io::stderr().is_terminal(),
        spinner_shown: false,
        browser: None,
    };
    let result = client.login(&request, STEP_TIMEOUT, |step| progress.show(step));
    progress.clear_spinner();
    if let Some(mut browser) = progress.browser.take() {
        // Reap the opener if it is done; a browser that keeps running is left alone.
        let _ = browser.try_wait();
    }
    let signed_in = expect_response!(result?, Response::SignedIn)?;
    let who = signed_in.email.as_deref().or(signed_in.subject.as_deref());
    if args.json {
        println!(
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
            Some(who) => println!("Signed in to {} as {who}.", signed_in.name),
            None => println!("Signed in to {}.", signed_in.name),
        }
    }
    Ok(())
}

struct Progress {
    json: bool,
    open_browser: bool,
    spinner: bool,
    spinner_shown: bool,
    browser: Option<Child>,
}

impl Progress {
    fn show(&mut self, step: &LoginProgress) {
        if self.json {
            if let LoginProgress::OpenBrowser { url } = step
                && self.open_browser
            {
                self.browser = browser::open(url).ok();
            }
            println!("{}", serde_json::to_string(step).unwrap_or_default());
            let _ = std::io::stdout().flush();
            return;
        }
        match step {
            LoginProgress::OpenBrowser { url } => self.open(url),
            LoginProgress::DeviceCode {
                verification_uri,
                verification_uri_complete,
                user_code,
                expires_at,
            } => {
                eprintln!("To sign in, open {verification_uri}");
                eprintln!("and enter the code:  {user_code}");
                if let Some(complete) = verification_uri_complete {
                    eprintln!("(or open {complete} , which carries the code)");
                }
                eprintln!("The code expires {}.", when(*expires_at));
                if !self.spinner {
                    eprintln!("Waiting for the sign-in to be approved…");
                }
            }
            LoginProgress::Waiting { elapsed_secs } => {
                if self.spinner {
                    let frame = SPINNER[*elapsed_secs as usize % SPINNER.len()];
                    eprint!("\r{frame} waiting for the sign-in… {elapsed_secs}s (Ctrl-C cancels)");
                    self.spinner_shown = true;
                }
            }
        }
    }

    fn open(&mut self, url: &str) {
        if !self.open_browser {
            eprintln!("Open this URL in a browser on this machine to sign in:\n\n  {url}\n");
            return;
        }
        match browser::open(url) {
            Ok(child) => {
                self.browser = Some(child);
                eprintln!(
                    "Your browser was opened to sign in. If nothing opened, visit:\n\n  {url}\n"
                );
            }
            Err(err) => {
                eprintln!(
                    "Could not open a browser ({err}). Open this URL to sign in:\n\n  {url}\n"
                );
            }
        }
        if !self.spinner {
            eprintln!("Waiting for the sign-in to complete in the browser…");
        }
    }

    fn clear_spinner(&mut self) {
        if self.spinner_shown {
            eprint!("\r\x1b[2K");
            self.spinner_shown = false;
        }
    }
}
