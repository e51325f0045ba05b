//! The stagepass tray app: a Tauri host over the agent client. It mirrors the agent's state
//! in the tray and in a few windows, and asks the agent for everything else; it holds no
//! tokens and no sign-in logic of its own.

pub mod agent;
pub mod app;
pub mod audit;
pub mod clock;
pub mod commands;
pub mod desktop;
pub mod details;
pub mod menu_model;
pub mod qr;
pub mod settings;
pub mod sign_in;
pub mod state;
pub mod tray;
pub mod watcher;
pub mod windows;

use std::sync::Arc;

use tauri::{Manager, RunEvent};

use crate::agent::ClientAgent;
use crate::app::AppCore;
use crate::desktop::TauriDesktop;
use crate::windows::WindowKind;

/// Added by the start-at-login entry, so such a start is told apart in the process list.
const AUTOSTART_FLAG: &str = "--autostart";

/// `stagepass-tray --settings` (or `--status`, `--recent-access`, `--sign-in PROFILE`) opens
/// that window, in the running tray when there is one. A plain second start shows Status.
fn open_requested_window<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    args: &[String],
    second_start: bool,
) {
    let show = |kind, query| windows::show(app, kind, query).map_err(|err| err.to_string());
    let mut args = args.iter().skip(1).map(String::as_str);
    let result = match args.next() {
        Some("--settings") => show(WindowKind::Settings, None),
        Some("--status") => show(WindowKind::Status, Some("view=profiles")),
        Some("--recent-access") => show(WindowKind::Status, Some("view=access")),
        Some("--sign-in") => match args.next() {
            Some(profile) => commands::open_sign_in(app.clone(), app.state(), profile.into())
                .map_err(|err| err.message),
            None => Err("--sign-in needs a profile name".into()),
        },
        _ if second_start => show(WindowKind::Status, Some("view=profiles")),
        _ => Ok(()),
    };
    if let Err(err) = result {
        tracing::warn!("cannot open the window: {err}");
    }
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STAGEPASS_LOG")
                .unwrap_or_else(|_| "stagepass_tray=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let app = tauri::Builder::default()
        // First: a second start hands over to the running tray, which shows its status.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            open_requested_window(app, &argv, true);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![AUTOSTART_FLAG]),
        ))
        .plugin(tauri_plugin_clipboard_manager::init())
        .setup(|app| {
            let handle = app.handle().clone();
            app.manage(AppCore::new(
                Arc::new(ClientAgent::new()),
                Arc::new(TauriDesktop {
                    app: handle.clone(),
                }),
            ));
            tray::create(&handle)?;
            watcher::spawn(handle.clone())?;
            let args: Vec<String> = std::env::args().collect();
            open_requested_window(&handle, &args, false);
            Ok(())
        })
        .invoke_handler(commands::handler())
        .build(tauri::generate_context!())
        .unwrap_or_else(|err| {
            eprintln!("stagepass-tray: cannot start: {err}");
            std::process::exit(1);
        });
    app.run(|_app, event| {
        // A tray app outlives its windows: closing the last one must not end it. Quit (an
        // explicit exit code) does.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
}
