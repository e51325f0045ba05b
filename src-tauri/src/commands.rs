//! The Tauri commands the windows call. Each is a thin step: ask the agent (through
//! [`crate::agent::Agent`]), the desktop or the config editor, and hand back plain data.
//! Blocking work runs off the UI thread.

#![allow(
    clippy::unreachable,
    reason = "#[tauri::command] on an async command that borrows State emits a sibling item with \
              an unreachable! (its check that the command returns a Result); this module writes \
              none of its own"
)]

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stagepass_core::config::Desktop as DesktopPrefs;
use stagepass_core::http::{HttpClient, HttpLimits};
use stagepass_core::oidc::Provider;
use stagepass_proto::{Flow, SignOutReport};
use tauri::ipc::Invoke;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};

use crate::agent::TrayError;
use crate::app::AppCore;
use crate::audit::{self, AuditEntry};
use crate::clock::WallClock;
use crate::details::{self, ProfileDetails};
use crate::settings::{GitHostForm, ProfileForm, SettingsView};
use crate::sign_in::{SignInPhase, SignInView};
use crate::state::TrayState;
use crate::windows::{self, WindowKind};

pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        agent_state,
        start_sign_in,
        open_sign_in,
        sign_in_view,
        copy_user_code,
        cancel_sign_in,
        reopen_browser,
        sign_out,
        copy_token,
        profile_details,
        recent_access,
        settings,
        save_profile,
        remove_profile,
        save_git_hosts,
        save_preferences,
        discover,
        open_window,
    ]
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TrayError> + Send + 'static,
) -> Result<T, TrayError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|err| TrayError::new(format!("internal error: {err}")))?
}

#[tauri::command]
fn agent_state(core: State<'_, AppCore>) -> TrayState {
    core.state().clone()
}

/// Starts a sign-in (or returns the one under way); progress arrives as `sign-in` events.
#[tauri::command]
pub fn start_sign_in<R: Runtime>(
    app: AppHandle<R>,
    core: State<'_, AppCore>,
    profile: String,
    flow: Option<Flow>,
) -> SignInView {
    let desktop = core.desktop.clone();
    let open_url = Arc::new(move |url: &str| {
        if let Err(err) = desktop.open_url(url) {
            tracing::warn!("{err}");
        }
    });
    let on_change = Arc::new(move |view: &SignInView| {
        let _ = app.emit("sign-in", view);
        if matches!(view.phase, SignInPhase::SignedIn { .. }) {
            windows::close_later(&app, WindowKind::SignIn);
        }
    });
    core.sign_ins
        .start(core.agent.clone(), &profile, flow, open_url, on_change)
}

/// Starts a sign-in and shows its window (the tray menu's and the status window's "Sign in").
#[tauri::command]
pub fn open_sign_in<R: Runtime>(
    app: AppHandle<R>,
    core: State<'_, AppCore>,
    profile: String,
) -> Result<(), TrayError> {
    start_sign_in(app.clone(), core, profile.clone(), None);
    windows::show(
        &app,
        WindowKind::SignIn,
        Some(&format!("profile={profile}")),
    )
    .map_err(|err| TrayError::new(format!("cannot open the sign-in window: {err}")))
}

/// Copies the device flow's user code (not a secret: it is shown on screen).
#[tauri::command]
fn copy_user_code(core: State<'_, AppCore>, profile: String) -> Result<(), TrayError> {
    match core.sign_ins.view(&profile).map(|view| view.phase) {
        Some(SignInPhase::Device { user_code, .. }) => core.desktop.copy_text(&user_code),
        _ => Err(TrayError::new("no device code is shown for this profile")),
    }
}

#[tauri::command]
fn sign_in_view(core: State<'_, AppCore>, profile: String) -> Option<SignInView> {
    core.sign_ins.view(&profile)
}

#[tauri::command]
fn cancel_sign_in(core: State<'_, AppCore>, profile: String) -> Option<SignInView> {
    core.sign_ins.cancel(&profile)
}

#[tauri::command]
fn reopen_browser(core: State<'_, AppCore>, profile: String) -> Result<(), TrayError> {
    match core.sign_ins.view(&profile).map(|view| view.phase) {
        Some(SignInPhase::Browser { url }) => core.desktop.open_url(&url),
        _ => Err(TrayError::new(
            "no browser sign-in is under way for this profile",
        )),
    }
}

#[tauri::command]
async fn sign_out(core: State<'_, AppCore>, profile: String) -> Result<SignOutReport, TrayError> {
    let agent = core.agent.clone();
    blocking(move || agent.sign_out(&profile)).await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyConfirmation {
    pub profile: String,
    pub expires_at: Option<u64>,
    /// "14:32", for the confirmation.
    pub expires_label: Option<String>,
}

/// Copies a fresh access token to the clipboard and confirms which one, and until when. The
/// token passes through this process only on its way to the clipboard.
#[tauri::command]
pub async fn copy_token(
    core: State<'_, AppCore>,
    profile: String,
) -> Result<CopyConfirmation, TrayError> {
    let (agent, desktop) = (core.agent.clone(), core.desktop.clone());
    blocking(move || {
        let grant = agent.access_token(&profile)?;
        desktop.copy_text(grant.token.expose())?;
        let expires_label = grant.expires_at.map(|at| WallClock::system().time_of(at));
        let until = expires_label
            .as_ref()
            .map(|at| format!("It expires at {at}."))
            .unwrap_or_default();
        desktop.notify(
            &format!("Copied the {} access token", grant.profile),
            &format!("{until} Paste it where you need it; it is not kept anywhere else."),
        );
        Ok(CopyConfirmation {
            profile: grant.profile,
            expires_at: grant.expires_at,
            expires_label,
        })
    })
    .await
}

#[tauri::command]
async fn profile_details(
    core: State<'_, AppCore>,
    profile: String,
) -> Result<ProfileDetails, TrayError> {
    let groups_claim = core
        .config()
        .and_then(|editor| editor.parsed())
        .ok()
        .and_then(|config| {
            config
                .profiles
                .get(&profile)
                .and_then(|p| p.groups_claim.clone())
        });
    let agent = core.agent.clone();
    let report = blocking(move || agent.claims(&profile)).await?;
    Ok(details::profile_details(&report, groups_claim.as_deref()))
}

/// The status window's last entries of the audit log.
pub const RECENT_ACCESS_LIMIT: usize = 50;

#[tauri::command]
fn recent_access(core: State<'_, AppCore>, profile: Option<String>) -> Vec<AuditEntry> {
    audit::recent(&core.data_dir, RECENT_ACCESS_LIMIT, profile.as_deref())
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsPage {
    #[serde(flatten)]
    pub config: SettingsView,
    pub start_at_login: bool,
}

fn settings_page(core: &AppCore) -> Result<SettingsPage, TrayError> {
    Ok(SettingsPage {
        config: core.config()?.view()?,
        start_at_login: core.desktop.autostart().unwrap_or(false),
    })
}

#[tauri::command]
fn settings(core: State<'_, AppCore>) -> Result<SettingsPage, TrayError> {
    settings_page(&core)
}

#[tauri::command]
fn save_profile(
    core: State<'_, AppCore>,
    original: Option<String>,
    form: ProfileForm,
) -> Result<SettingsPage, TrayError> {
    let mut editor = core.config()?;
    editor.upsert_profile(original.as_deref(), &form)?;
    editor.save()?;
    settings_page(&core)
}

#[tauri::command]
fn remove_profile(core: State<'_, AppCore>, name: String) -> Result<SettingsPage, TrayError> {
    let mut editor = core.config()?;
    editor.remove_profile(&name)?;
    editor.save()?;
    settings_page(&core)
}

#[tauri::command]
fn save_git_hosts(
    core: State<'_, AppCore>,
    hosts: Vec<GitHostForm>,
) -> Result<SettingsPage, TrayError> {
    let mut editor = core.config()?;
    editor.set_git_hosts(&hosts)?;
    editor.save()?;
    settings_page(&core)
}

#[derive(Debug, Clone, Deserialize)]
pub struct Preferences {
    #[serde(flatten)]
    pub desktop: DesktopPrefs,
    pub start_at_login: bool,
}

#[tauri::command]
fn save_preferences(
    core: State<'_, AppCore>,
    preferences: Preferences,
) -> Result<SettingsPage, TrayError> {
    let mut editor = core.config()?;
    editor.set_desktop(&preferences.desktop)?;
    editor.save()?;
    if core.desktop.autostart().ok() != Some(preferences.start_at_login) {
        core.desktop.set_autostart(preferences.start_at_login)?;
    }
    settings_page(&core)
}

/// What an IdP supports, shown in the profile form before it is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryView {
    pub issuer: String,
    pub pkce_s256: bool,
    pub device_flow: bool,
    pub revocation: bool,
    pub iss_parameter: bool,
}

/// OIDC discovery of the form's issuer, with the core's own checks (exact issuer, https).
#[tauri::command]
async fn discover(core: State<'_, AppCore>, form: ProfileForm) -> Result<DiscoveryView, TrayError> {
    // A Backstage behind oauth2-proxy has no IdP of its own: check the one it signs in through.
    let profile = match &form.via_profile {
        Some(via) => core
            .config()?
            .parsed()?
            .profiles
            .remove(via)
            .ok_or_else(|| TrayError::new(format!("no profile `{via}` to sign in through")))?,
        None => form.to_profile()?,
    };
    let http = HttpClient::new(HttpLimits::default())
        .map_err(|err| TrayError::new(format!("cannot build the HTTP client: {err}")))?;
    let provider = Provider::discover(&profile, &http)
        .await
        .map_err(|err| TrayError {
            message: err.to_string(),
            hint: Some("check the issuer URL: it must match the IdP's `issuer` exactly".into()),
        })?;
    let capabilities = provider.capabilities();
    Ok(DiscoveryView {
        issuer: provider.issuer().to_string(),
        pkce_s256: capabilities.pkce_s256,
        device_flow: capabilities.device_flow,
        revocation: capabilities.revocation,
        iss_parameter: capabilities.iss_parameter,
    })
}

#[tauri::command]
fn open_window<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), TrayError> {
    let kind = WindowKind::from_label(&name)
        .ok_or_else(|| TrayError::new(format!("no window called `{name}`")))?;
    windows::show(&app, kind, None).map_err(|err| TrayError::new(err.to_string()))?;
    let _ = app
        .get_webview_window(kind.label())
        .map(|window| window.set_focus());
    Ok(())
}
