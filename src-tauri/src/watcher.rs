//! Follows the agent's status stream on a background thread and keeps the tray and the
//! windows up to date. When the agent goes away it reconnects, starting a new one.

use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::app::AppCore;
use crate::tray;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

pub fn spawn<R: Runtime>(app: AppHandle<R>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("agent-watcher".into())
        .spawn(move || watch(app))?;
    Ok(())
}

fn watch<R: Runtime>(app: AppHandle<R>) {
    let core = app.state::<AppCore>();
    let mut retry = FIRST_RETRY;
    loop {
        let result = core.agent.subscribe(&mut |update| {
            retry = FIRST_RETRY;
            if core.state().apply(&update) {
                publish(&app);
            }
            true
        });
        let message = match result {
            Ok(()) => "the agent stopped".to_string(),
            Err(err) => err.message,
        };
        tracing::info!("agent stream ended: {message}; retrying in {retry:?}");
        core.state().disconnected(message);
        publish(&app);
        std::thread::sleep(retry);
        retry = (retry * 2).min(LONGEST_RETRY);
    }
}

/// Redraws the tray and tells the open windows.
pub fn publish<R: Runtime>(app: &AppHandle<R>) {
    tray::refresh(app);
    let state = app.state::<AppCore>().state().clone();
    let _ = app.emit("agent-state", state);
}
