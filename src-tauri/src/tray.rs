//! The tray icon and its native menu, redrawn from [`crate::menu_model`] whenever the agent's
//! state changes, and what each menu entry does.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::app::AppCore;
use crate::clock::WallClock;
use crate::commands;
use crate::menu_model::{self, MenuAction, MenuEntry};
use crate::state::TrayLook;
use crate::windows::{self, WindowKind};

const TRAY_ID: &str = "stagepass";

/// Fails only if an icon is not a valid PNG, which a test rules out.
fn icon(look: TrayLook) -> tauri::Result<Image<'static>> {
    // 64 px sources: panels scale them down to 16–32 px, and HiDPI panels stay sharp.
    let bytes: &[u8] = match look {
        TrayLook::SignedOut => include_bytes!("../../icons/tray-signed-out@2x.png"),
        TrayLook::SignedIn => include_bytes!("../../icons/tray-signed-in@2x.png"),
        TrayLook::Attention => include_bytes!("../../icons/tray-attention@2x.png"),
    };
    Image::from_bytes(bytes)
}

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let core = app.state::<AppCore>();
    let state = core.state().clone();
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(state.look())?)
        .tooltip(menu_model::tooltip(&state, &WallClock::system()))
        .menu(&native_menu(app)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| run_action(app, event.id().as_ref()))
        .build(app)?;
    Ok(())
}

/// Redraws icon, tooltip and menu from the current state.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let state = app.state::<AppCore>().state().clone();
    let result = (|| -> tauri::Result<()> {
        tray.set_icon(Some(icon(state.look())?))?;
        tray.set_tooltip(Some(menu_model::tooltip(&state, &WallClock::system())))?;
        tray.set_menu(Some(native_menu(app)?))
    })();
    if let Err(err) = result {
        tracing::warn!("cannot redraw the tray: {err}");
    }
}

fn native_menu<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Menu<R>> {
    let core = app.state::<AppCore>();
    let backstage = core.preferences().backstage_url.is_some() || core.backstage_route().is_some();
    let entries = menu_model::build_menu(&core.state(), backstage, &WallClock::system());
    let menu = Menu::new(app)?;
    for (index, entry) in entries.iter().enumerate() {
        match entry {
            MenuEntry::Info(text) => menu.append(&MenuItem::with_id(
                app,
                format!("info-{index}"),
                text,
                false,
                None::<&str>,
            )?)?,
            MenuEntry::Action { action, label } => menu.append(&MenuItem::with_id(
                app,
                action.id(),
                label,
                true,
                None::<&str>,
            )?)?,
            MenuEntry::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

fn run_action<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(action) = MenuAction::from_id(id) else {
        return;
    };
    let result = match action {
        MenuAction::SignIn(profile) => {
            commands::open_sign_in(app.clone(), app.state(), profile).map_err(|err| err.message)
        }
        MenuAction::SignOut(profile) => {
            let agent = app.state::<AppCore>().agent.clone();
            let desktop = app.state::<AppCore>().desktop.clone();
            std::thread::spawn(move || {
                if let Err(err) = agent.sign_out(&profile) {
                    desktop.notify(&format!("{profile}: sign-out failed"), &err.message);
                }
            });
            Ok(())
        }
        MenuAction::CopyToken(profile) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(err) = commands::copy_token(app.state(), profile.clone()).await {
                    let desktop = &app.state::<AppCore>().desktop;
                    desktop.notify(&format!("{profile}: no token copied"), &err.message);
                }
            });
            Ok(())
        }
        MenuAction::OpenBackstage => {
            let core = app.state::<AppCore>();
            if let Err(err) = core.open_backstage() {
                core.desktop.notify("Cannot open Backstage", &err.message);
            }
            Ok(())
        }
        MenuAction::Status => show(app, WindowKind::Status, Some("view=profiles")),
        MenuAction::RecentAccess => show(app, WindowKind::Status, Some("view=access")),
        MenuAction::Settings => show(app, WindowKind::Settings, None),
        MenuAction::Quit => {
            quit(app);
            Ok(())
        }
    };
    if let Err(err) = result {
        tracing::warn!("{id}: {err}");
    }
}

fn show<R: Runtime>(
    app: &AppHandle<R>,
    kind: WindowKind,
    query: Option<&str>,
) -> Result<(), String> {
    windows::show(app, kind, query).map_err(|err| err.to_string())
}

/// Ends the tray. The agent stays up (the helpers rely on it) unless the user chose
/// otherwise in Settings.
fn quit<R: Runtime>(app: &AppHandle<R>) {
    let core = app.state::<AppCore>();
    if core.preferences().quit_stops_agent
        && let Err(err) = core.agent.shutdown()
    {
        tracing::warn!("cannot stop the agent: {err}");
    }
    app.exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_square_rgba_icon() {
        for look in [TrayLook::SignedOut, TrayLook::SignedIn, TrayLook::Attention] {
            let image = icon(look).unwrap();
            assert_eq!((image.width(), image.height()), (64, 64), "{look:?}");
            assert_eq!(image.rgba().len(), 64 * 64 * 4);
            // Transparent corners: the badge sits on the panel, not on a box.
            assert_eq!(image.rgba()[3], 0, "{look:?}");
        }
    }
}
