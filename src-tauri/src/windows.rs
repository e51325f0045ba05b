//! The app's windows, created on demand (a tray app has none at start) and focused when
//! they already exist.

use std::time::Duration;

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    SignIn,
    Status,
    Settings,
}

impl WindowKind {
    pub fn label(self) -> &'static str {
        match self {
            WindowKind::SignIn => "sign-in",
            WindowKind::Status => "status",
            WindowKind::Settings => "settings",
        }
    }

    pub fn from_label(label: &str) -> Option<WindowKind> {
        [WindowKind::SignIn, WindowKind::Status, WindowKind::Settings]
            .into_iter()
            .find(|kind| kind.label() == label)
    }

    fn page(self) -> &'static str {
        match self {
            WindowKind::SignIn => "sign-in.html",
            WindowKind::Status => "status.html",
            WindowKind::Settings => "settings.html",
        }
    }

    fn title(self) -> &'static str {
        match self {
            WindowKind::SignIn => "Sign in — stagepass",
            WindowKind::Status => "Status — stagepass",
            WindowKind::Settings => "Settings — stagepass",
        }
    }

    /// Logical pixels: the windows scale with the desktop (100 % and 200 % alike).
    fn size(self) -> (f64, f64) {
        match self {
            WindowKind::SignIn => (440.0, 560.0),
            WindowKind::Status => (720.0, 640.0),
            WindowKind::Settings => (720.0, 680.0),
        }
    }
}

/// Shows the window, creating it when needed. `query` (`profile=corp`, `view=access`) picks
/// what the page shows; an open window is sent there.
pub fn show<R: Runtime>(
    app: &AppHandle<R>,
    kind: WindowKind,
    query: Option<&str>,
) -> tauri::Result<()> {
    let page = match query {
        Some(query) => format!("{}?{query}", kind.page()),
        None => kind.page().to_string(),
    };
    if let Some(window) = app.get_webview_window(kind.label()) {
        if query.is_some()
            && let Ok(current) = window.url()
            && let Ok(target) = current.join(&format!("/{page}"))
            && target != current
        {
            window.navigate(target)?;
        }
        window.unminimize()?;
        window.show()?;
        return window.set_focus();
    }
    let (width, height) = kind.size();
    let window = WebviewWindowBuilder::new(app, kind.label(), WebviewUrl::App(page.into()))
        .title(kind.title())
        .inner_size(width, height)
        .min_inner_size(360.0, 420.0)
        .center()
        .build()?;
    window.set_focus()
}

/// Closes the window after a moment, so the user sees the success it shows.
pub fn close_later<R: Runtime>(app: &AppHandle<R>, kind: WindowKind) {
    let app = app.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        if let Some(window) = app.get_webview_window(kind.label()) {
            let _ = window.close();
        }
    });
}
