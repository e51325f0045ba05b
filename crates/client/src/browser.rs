//! Opening the sign-in page where the user is.

use std::process::{Child, Command, Stdio};

/// Whether a browser can be opened on the user's screen. Over SSH or in a Codespace the
/// loopback redirect would reach the wrong machine, so those use the device code even when
/// `$BROWSER` is set (Codespaces sets it to a forwarder).
pub fn available() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if set("SSH_CONNECTION") || set("SSH_TTY") || set("CODESPACES") {
        return false;
    }
    if set("BROWSER") {
        return true;
    }
    if cfg!(any(target_os = "macos", windows)) {
        return true;
    }
    set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// Starts the browser on `url` without waiting for it: `$BROWSER` when set (a command, with
/// `%s` replaced by the URL or the URL appended), otherwise the platform opener.
pub fn open(url: &str) -> std::io::Result<Child> {
    let mut command = match std::env::var("BROWSER")
        .ok()
        .filter(|value| !value.trim().is_empty())
    {
        Some(browser) => browser_command(&browser, url)?,
        None => {
            let mut command = Command::new(if cfg!(target_os = "macos") {
                "open"
            } else {
                "xdg-open"
            });
            command.arg(url);
            command
        }
    };
    command.stdin(Stdio::null()).stdout(Stdio::null()).spawn()
}

fn browser_command(browser: &str, url: &str) -> std::io::Result<Command> {
    // Debian's convention: a colon-separated list of candidates; the first is used.
    let first = browser
        .split(':')
        .find(|part| !part.trim().is_empty())
        .unwrap_or(browser);
    let mut words = first.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| std::io::Error::other("$BROWSER is empty"))?;
    let mut command = Command::new(program);
    let mut substituted = false;
    for word in words {
        if word.contains("%s") {
            command.arg(word.replace("%s", url));
            substituted = true;
        } else {
            command.arg(word);
        }
    }
    if !substituted {
        command.arg(url);
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(command: &Command) -> Vec<String> {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn browser_variable_forms() {
        let url = "https://idp/authorize?x=1";
        assert_eq!(
            argv(&browser_command("firefox", url).unwrap()),
            ["firefox", url]
        );
        assert_eq!(
            argv(&browser_command("chromium --new-window %s", url).unwrap()),
            ["chromium", "--new-window", url]
        );
        assert_eq!(
            argv(&browser_command("w3m:lynx", url).unwrap()),
            ["w3m", url]
        );
    }
}
