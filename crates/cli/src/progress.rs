//! Showing a sign-in's progress: open the browser or show the device code, then a spinner.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use stagepass_client::browser::{self, Opened};
use stagepass_client::{Client, ClientError, Closer, Steps};
use stagepass_proto::{AgentError, ErrorKind, LoginProgress};

use crate::error::CommandError;
use crate::output::when;

/// The agent sends a heartbeat every 2 s while waiting; silence this long means it is gone.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an opener may take to fail: `false`, a missing program or xdg-open without a
/// handler fail within milliseconds; a browser that stays in the foreground costs this much.
const OPENER_GRACE: Duration = Duration::from_secs(1);
const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Makes `call` (a login, or a call that may sign in) and shows the sign-in's progress.
/// `json`: each step as a JSON line on stdout; `open_browser`: open it (or only print the URL).
pub fn sign_in<T>(
    client: &mut Client,
    json: bool,
    open_browser: bool,
    call: impl FnOnce(&mut Client, Steps<'_>) -> Result<T, ClientError>,
) -> Result<T, CommandError> {
    let mut progress = Progress {
        json,
        open_browser,
        at_terminal: std::io::stderr().is_terminal(),
        spinner_shown: false,
        browser: None,
        closer: client.closer().ok(),
        failed: None,
    };
    let mut on_step = |step: &LoginProgress| progress.show(step);
    let result = call(
        client,
        Steps {
            step_timeout: STEP_TIMEOUT,
            on_step: &mut on_step,
        },
    );
    progress.finish();
    // The connection was closed on purpose (which cancels the sign-in at the agent): the
    // reason is ours, not the closed connection's.
    if let Some(failed) = progress.failed.take() {
        return Err(failed);
    }
    Ok(result?)
}

struct Progress {
    json: bool,
    open_browser: bool,
    /// Someone at a terminal can be shown where to sign in; anyone else must not wait for a
    /// browser that never opened.
    at_terminal: bool,
    spinner_shown: bool,
    browser: Option<Opened>,
    /// Ends the sign-in early: the agent sees the client go and cancels it.
    closer: Option<Closer>,
    failed: Option<CommandError>,
}

impl Progress {
    fn show(&mut self, step: &LoginProgress) {
        if self.json {
            if let LoginProgress::OpenBrowser { url } = step
                && self.open_browser
            {
                self.browser = browser::open(url).ok();
            }
            let line = serde_json::to_string(step).unwrap_or_default();
            // Whoever reads the steps is gone or stdout is broken: the sign-in has no one
            // to show it to, so it ends, and the write's error is the command's.
            if let Err(err) = crate::output::write_stdout(format_args!("{line}\n")) {
                self.fail(err);
                return;
            }
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
                if !self.at_terminal {
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
                if self.at_terminal {
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
        let failure = match browser::open(url) {
            Ok(mut opened) => {
                let failure = opened
                    .failure_within(OPENER_GRACE)
                    .map(|status| format!("the browser command exited at once ({status})"));
                self.browser = Some(opened);
                failure
            }
            Err(err) => Some(err.to_string()),
        };
        match failure {
            None if self.at_terminal => {
                errln!("Your browser was opened to sign in. If nothing opened, visit:\n\n  {url}\n")
            }
            // The URL only ever goes to a terminal: stderr may be a log others can read.
            None => {
                errln!("Your browser was opened to sign in.");
                errln!("Waiting for the sign-in to complete in the browser…");
            }
            Some(failure) if self.at_terminal => {
                errln!(
                    "Could not open a browser ({failure}). Open this URL to sign in:\n\n  {url}\n"
                );
            }
            // Nobody can open the page by hand: waiting ten minutes would help no one.
            Some(failure) => {
                self.fail(
                    AgentError {
                        kind: ErrorKind::NeedsSignIn,
                        message: format!("cannot sign in: could not open a browser ({failure})"),
                        hint: Some(
                            "set $BROWSER to a command that opens a browser, run \
                             `stagepass login` in a terminal, or use `stagepass login --device`"
                                .into(),
                        ),
                    }
                    .into(),
                );
            }
        }
    }

    /// Ends the sign-in with `err`: closing the connection makes the agent cancel it.
    fn fail(&mut self, err: CommandError) {
        self.failed.get_or_insert(err);
        if let Some(closer) = &self.closer {
            closer.close();
        }
    }

    /// Clears the spinner line and lets go of the browser's redirect page.
    fn finish(&mut self) {
        if self.spinner_shown {
            eprint!("\r\x1b[2K");
            self.spinner_shown = false;
        }
        if let Some(browser) = self.browser.take() {
            browser.finish();
        }
    }
}
