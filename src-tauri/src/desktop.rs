//! What the tray asks of the desktop: the clipboard, notifications, a browser, start at
//! login. Behind a trait so the Tauri commands are tested without a display.

use stagepass_client::browser;
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;

use crate::agent::TrayError;

pub trait Desktop: Send + Sync + 'static {
    fn copy_text(&self, text: &str) -> Result<(), TrayError>;
    fn notify(&self, summary: &str, body: &str);
    fn open_url(&self, url: &str) -> Result<(), TrayError>;
    fn autostart(&self) -> Result<bool, TrayError>;
    fn set_autostart(&self, enabled: bool) -> Result<(), TrayError>;
}

/// The real desktop, through Tauri's plugins.
pub struct TauriDesktop<R: Runtime> {
    pub app: AppHandle<R>,
}

impl<R: Runtime> Desktop for TauriDesktop<R> {
    fn copy_text(&self, text: &str) -> Result<(), TrayError> {
        self.app
            .clipboard()
            .write_text(text)
            .map_err(|err| TrayError::new(format!("cannot write to the clipboard: {err}")))
    }

    fn notify(&self, summary: &str, body: &str) {
        let (summary, body) = (summary.to_string(), body.to_string());
        // notify-rust blocks on D-Bus; never on the UI thread.
        std::thread::spawn(move || {
            let shown = notify_rust::Notification::new()
                .appname("stagepass")
                .summary(&summary)
                .body(&body)
                .show();
            if let Err(err) = shown {
                tracing::info!("no desktop notification ({err}): {summary}: {body}");
            }
        });
    }

    fn open_url(&self, url: &str) -> Result<(), TrayError> {
        // The same opener as the CLI: $BROWSER when set, else xdg-open / open.
        browser::open(url)
            .map(drop)
            .map_err(|err| TrayError::new(format!("cannot open a browser: {err}")))
    }

    fn autostart(&self) -> Result<bool, TrayError> {
        self.app
            .autolaunch()
            .is_enabled()
            .map_err(|err| TrayError::new(format!("cannot read the start-at-login entry: {err}")))
    }

    fn set_autostart(&self, enabled: bool) -> Result<(), TrayError> {
        let launcher = self.app.autolaunch();
        let result = if enabled {
            launcher.enable()
        } else {
            launcher.disable()
        };
        result.map_err(|err| TrayError::new(format!("cannot change start at login: {err}")))
    }
}
