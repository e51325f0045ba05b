//! Showing a sign-in's progress: open the browser or show the device code, then a spinner.

use std::io::{IsTerminal, Write};
use std::process::Child;
use std::time::Duration;

use stagepass_proto::LoginProgress;

use crate::browser;
use crate::output::when;

/// The agent sends a heartbeat every 2 s while waiting; silence this long means it is gone.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub struct Progress {
    json: bool,
    open_browser: bool,
    spinner: bool,
    spinner_shown: bool,
    browser: Option<Child>,
}

impl Progress {
    /// `json`: each step as a JSON line on stdout; `open_browser`: open it (or only print
    /// the URL).
    pub fn new(json: bool, open_browser: bool) -> Progress {
        Progress {
            json,
            open_browser,
            spinner: !json && std::io::stderr().is_terminal(),
            spinner_shown: false,
            browser: None,
        }
    }

    pub fn show(&mut self, step: &LoginProgress) {
        if self.json {
            if let LoginProgress::OpenBrowser { url } = step
                && self.open_browser
            {
                self.browser = browser::open(url).ok();
            }
            outln!("{}", serde_json::to_string(step).unwrap_or_default());
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
                errln!("To sign in, open {verification_uri}");
                errln!("and enter the code:  {user_code}");
                if let Some(complete) = verification_uri_complete {
                    errln!("(or open {complete} , which carries the code)");
                }
                errln!("The code expires {}.", when(*expires_at));
                if !self.spinner {
                    errln!("Waiting for the sign-in to be approved…");
                }
            }
            LoginProgress::Joined { started_by_pid } => {
                let by = started_by_pid
                    .map(|pid| format!(" (started by pid {pid})"))
                    .unwrap_or_default();
                errln!("A sign-in for this profile is already under way{by}; waiting for it…");
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
            errln!("Open this URL in a browser on this machine to sign in:\n\n  {url}\n");
            return;
        }
        match browser::open(url) {
            Ok(child) => {
                self.browser = Some(child);
                errln!(
                    "Your browser was opened to sign in. If nothing opened, visit:\n\n  {url}\n"
                );
            }
            Err(err) => {
                errln!("Could not open a browser ({err}). Open this URL to sign in:\n\n  {url}\n");
            }
        }
        if !self.spinner {
            errln!("Waiting for the sign-in to complete in the browser…");
        }
    }

    /// Clears the spinner line and reaps the browser opener if it is done (a browser that
    /// keeps running is left alone).
    pub fn finish(&mut self) {
        if self.spinner_shown {
            eprint!("\r\x1b[2K");
            self.spinner_shown = false;
        }
        if let Some(mut browser) = self.browser.take() {
            let _ = browser.try_wait();
        }
    }
}
