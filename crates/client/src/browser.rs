//! Opening a page in the user's browser without putting its address in any argv.
//!
//! Every local user can read every process's argv (`/proc/PID/cmdline`). A sign-in's
//! authorization URL there lets another user finish the sign-in with their own account first
//! (its `state` and loopback port are all they need), and a proxy launch URL hands them a
//! session. So the browser is given the `file://` URL of a page in the private runtime dir
//! (0700; the page itself 0600) that redirects to the real address: a path that nobody but
//! the user can open. A one-time loopback URL would not do: another user reading argv first
//! could still race the browser to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use stagepass_core::{html, paths};
use url::Url;

/// The redirect pages' file names start with this, so stale ones can be found and removed.
const PAGE_PREFIX: &str = "browser-";
/// A page older than this has long been read (or never will be: sign-ins end after 10
/// minutes, launch URLs after one).
const STALE_PAGE: Duration = Duration::from_secs(15 * 60);

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

/// A browser started on a redirect page.
pub struct Opened {
    child: Child,
    page: PathBuf,
}

impl Opened {
    /// How the opener ended if it failed within `grace`: `false`, a missing browser, or
    /// xdg-open without a handler fail at once, while a browser that opened the page exits
    /// with 0 or keeps running (waiting costs at most `grace`).
    pub fn failure_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return (!status.success()).then_some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }

    /// Removes the redirect page, once the page it led to has answered (or will never be
    /// needed), and reaps the opener if it is done (a browser that keeps running is left
    /// alone).
    pub fn finish(mut self) {
        let _ = std::fs::remove_file(&self.page);
        let _ = self.child.try_wait();
    }
}

/// Starts the browser on `url` (http or https) without waiting for it: `$BROWSER` when set
/// (a command, with `%s` replaced or the page's URL appended), otherwise the platform opener.
/// The browser's argv carries only the path of a private page that redirects to `url`.
pub fn open(url: &str) -> std::io::Result<Opened> {
    let target = Url::parse(url)
        .ok()
        .filter(|target| matches!(target.scheme(), "http" | "https"))
        .ok_or_else(|| std::io::Error::other("not an http(s) URL"))?;
    let page = write_redirect_page(&paths::runtime_dir(), &target)?;
    let page_url = Url::from_file_path(&page)
        .map_err(|()| std::io::Error::other(format!("{} is not absolute", page.display())))?;
    let spawned = opener_command(page_url.as_str())
        .and_then(|mut command| command.stdin(Stdio::null()).stdout(Stdio::null()).spawn());
    match spawned {
        Ok(child) => Ok(Opened { child, page }),
        Err(err) => {
            let _ = std::fs::remove_file(&page);
            Err(err)
        }
    }
}

/// Writes a 0600 page in `runtime_dir` that sends the browser on to `target`; removes the
/// pages of earlier opens that are past use.
fn write_redirect_page(runtime_dir: &Path, target: &Url) -> std::io::Result<PathBuf> {
    paths::ensure_private_dir(runtime_dir)?;
    remove_stale_pages(runtime_dir);
    let unique = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let page = runtime_dir.join(format!("{PAGE_PREFIX}{}-{unique}.html", std::process::id()));
    let target = html::escape(target.as_str());
    // A meta refresh works wherever the page is opened (JavaScript may be off); the link is
    // for a browser that refuses to leave a file page on its own. No referrer: the next
    // page need not learn the file's path.
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta http-equiv=\"refresh\" content=\"0;url={target}\">\
         <title>stagepass</title></head>\
         <body><p><a href=\"{target}\">Continue</a></p></body></html>\n"
    );
    paths::write_private_file(&page, &[html.as_bytes()])?;
    Ok(page)
}

fn remove_stale_pages(runtime_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(runtime_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified.elapsed().unwrap_or_default() > STALE_PAGE);
        if stale && entry.file_name().to_string_lossy().starts_with(PAGE_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn opener_command(page_url: &str) -> std::io::Result<Command> {
    match std::env::var("BROWSER")
        .ok()
        .filter(|value| !value.trim().is_empty())
    {
        Some(browser) => browser_command(&browser, page_url),
        None => Ok(platform_opener(page_url)),
    }
}

/// The desktop's own way to open a URL: `open` on macOS, `xdg-open` on freedesktop systems,
/// and on Windows the shell's URL handler through rundll32 (no `cmd /c start`, whose parsing
/// of `&` and `^` in an argument is a command injection waiting to happen).
fn platform_opener(page_url: &str) -> Command {
    let mut command = if cfg!(windows) {
        let mut command = Command::new("rundll32.exe");
        command.arg("url.dll,FileProtocolHandler");
        command
    } else if cfg!(target_os = "macos") {
        Command::new("open")
    } else {
        Command::new("xdg-open")
    };
    command.arg(page_url);
    command
}

fn browser_command(browser: &str, url: &str) -> std::io::Result<Command> {
    // Debian's convention: a colon-separated list of candidates; the first is used. Not on
    // Windows, where a colon follows every drive letter.
    let separator = if cfg!(windows) { '\0' } else { ':' };
    let first = browser
        .split(separator)
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
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn argv(command: &Command) -> Vec<String> {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn browser_variable_forms() {
        let url = "file:///run/user/1000/stagepass/browser-1-2.html";
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

    #[test]
    fn the_redirect_page_is_private_and_escapes_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let runtime_dir = tmp.path().join("run");
        let target =
            Url::parse("https://idp.example/authorize?state=s&x=%22%3E%3Cscript%3E").unwrap();
        let page = write_redirect_page(&runtime_dir, &target).unwrap();
        assert_eq!(std::fs::metadata(&page).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&runtime_dir).unwrap().mode() & 0o777,
            0o700
        );
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            html.contains("content=\"0;url=https://idp.example/authorize?state=s&amp;x=%22%3E"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
    }
}
