//! A fake agent and a fake desktop for the mock-runtime tests, and a way to invoke commands
//! the way a window does.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use serde_json::{Value, json};
use stagepass_client::Update;
use stagepass_proto::{
    ClaimSet, ClaimsReport, Flow, LoginProgress, ProfileStatus, ProxyLaunch, RefreshTokenState,
    Secret, SessionState, SignOutReport, StatusReport, TokenGrant, TokenKind,
};
use stagepass_tray::agent::{Agent, CancelSlot, TrayError};
use stagepass_tray::app::AppCore;
use stagepass_tray::desktop::Desktop;
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

pub const EXPIRES_AT: u64 = 1_795_357_920;

pub fn signed_in(name: &str) -> ProfileStatus {
    ProfileStatus {
        name: name.into(),
        issuer: "https://idp.example.com".into(),
        state: SessionState::SignedIn,
        subject: Some("u1".into()),
        email: Some("alice@example.com".into()),
        access_token_expires_at: Some(EXPIRES_AT),
        reason: None,
        notes: Vec::new(),
        user: None,
        never_expires: false,
    }
}

#[derive(Default)]
pub struct FakeAgent {
    pub calls: Mutex<Vec<String>>,
    /// The steps a sign-in reports before it succeeds; `None`: it fails.
    pub sign_in_steps: Mutex<Option<Vec<LoginProgress>>>,
    /// When set, a sign-in waits here after its steps, as a real one waits for the user.
    pub hold: Mutex<Option<mpsc::Receiver<()>>>,
}

impl FakeAgent {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Agent for FakeAgent {
    fn status(&self) -> Result<StatusReport, TrayError> {
        self.record("status".into());
        Ok(StatusReport {
            agent_version: "0.1.0".into(),
            agent_pid: 7,
            config_path: "/tmp/none.toml".into(),
            profiles: vec![signed_in("corp")],
            proxy: None,
        })
    }

    fn claims(&self, profile: &str) -> Result<ClaimsReport, TrayError> {
        self.record(format!("claims {profile}"));
        let set = |claims: Value| {
            Some(ClaimSet {
                verified: true,
                note: "verified".into(),
                verified_at: None,
                claims,
            })
        };
        Ok(ClaimsReport {
            profile: profile.into(),
            id_token: set(
                json!({"sub": "u1", "email": "alice@example.com", "groups": ["dev"], "exp": EXPIRES_AT}),
            ),
            access_token: set(
                json!({"sub": "u1", "aud": "backstage", "iat": EXPIRES_AT - 300, "exp": EXPIRES_AT}),
            ),
            user: None,
            refresh_token: RefreshTokenState::Held {
                issued_at: None,
                expires_at: None,
            },
        })
    }

    fn sign_out(&self, profile: &str) -> Result<SignOutReport, TrayError> {
        self.record(format!("sign_out {profile}"));
        Ok(SignOutReport {
            profile: profile.into(),
            revoked: true,
            note: None,
        })
    }

    fn proxy_launch(&self, route: &str) -> Result<ProxyLaunch, TrayError> {
        self.record(format!("proxy_launch {route}"));
        Ok(ProxyLaunch {
            route: route.into(),
            url: Secret::new(format!(
                "http://127.0.0.1:7466/.stagepass/launch/{route}-once"
            )),
        })
    }

    fn access_token(&self, profile: &str) -> Result<TokenGrant, TrayError> {
        self.record(format!("access_token {profile}"));
        if profile != "corp" {
            return Err(TrayError {
                message: format!("{profile} needs a sign-in"),
                hint: Some(format!("run `stagepass login {profile}`")),
            });
        }
        Ok(TokenGrant {
            profile: profile.into(),
            token: Secret::new("eyJ.access.token".into()),
            token_type: "Bearer".into(),
            expires_at: Some(EXPIRES_AT),
            audience: None,
            kind: TokenKind::Access,
        })
    }

    fn sign_in(
        &self,
        profile: &str,
        flow: Option<Flow>,
        _cancel: &CancelSlot,
        on_progress: &mut dyn FnMut(&LoginProgress),
    ) -> Result<ProfileStatus, TrayError> {
        self.record(format!("sign_in {profile} {flow:?}"));
        let steps = self.sign_in_steps.lock().unwrap().clone();
        match steps {
            Some(steps) => {
                steps.iter().for_each(on_progress);
                if let Some(hold) = self.hold.lock().unwrap().take() {
                    let _ = hold.recv();
                }
                Ok(signed_in(profile))
            }
            None => Err(TrayError::new("the user denied the sign-in")),
        }
    }

    fn subscribe(&self, _on_update: &mut dyn FnMut(Update) -> bool) -> Result<(), TrayError> {
        Ok(())
    }

    fn shutdown(&self) -> Result<(), TrayError> {
        self.record("shutdown".into());
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeDesktop {
    pub clipboard: Mutex<Option<String>>,
    pub notifications: Mutex<Vec<(String, String)>>,
    pub opened: Mutex<Vec<String>>,
    pub autostart: Mutex<bool>,
}

impl Desktop for FakeDesktop {
    fn copy_text(&self, text: &str) -> Result<(), TrayError> {
        *self.clipboard.lock().unwrap() = Some(text.into());
        Ok(())
    }
    fn notify(&self, summary: &str, body: &str) {
        self.notifications
            .lock()
            .unwrap()
            .push((summary.into(), body.into()));
    }
    fn open_url(&self, url: &str) -> Result<(), TrayError> {
        self.opened.lock().unwrap().push(url.into());
        Ok(())
    }
    fn autostart(&self) -> Result<bool, TrayError> {
        Ok(*self.autostart.lock().unwrap())
    }
    fn set_autostart(&self, enabled: bool) -> Result<(), TrayError> {
        *self.autostart.lock().unwrap() = enabled;
        Ok(())
    }
}

pub struct Harness {
    pub app: App<MockRuntime>,
    pub window: WebviewWindow<MockRuntime>,
    pub agent: Arc<FakeAgent>,
    pub desktop: Arc<FakeDesktop>,
}

pub fn harness(config_path: &Path, data_dir: &Path) -> Harness {
    let agent = Arc::new(FakeAgent::default());
    let desktop = Arc::new(FakeDesktop::default());
    let mut core = AppCore::new(agent.clone(), desktop.clone());
    core.default_config_path = config_path.to_path_buf();
    core.data_dir = data_dir.to_path_buf();
    let app = mock_builder()
        .manage(core)
        .invoke_handler(stagepass_tray::commands::handler())
        .build(mock_context(noop_assets()))
        .expect("the mock app builds");
    let window = WebviewWindowBuilder::new(&app, "status", Default::default())
        .build()
        .expect("the mock window builds");
    Harness {
        app,
        window,
        agent,
        desktop,
    }
}

impl Harness {
    /// Invokes `command` as the window's JavaScript would; `Err` carries the command's error.
    pub fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: command.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                // What WebKitGTK uses for the app's pages on Linux.
                url: "tauri://localhost".parse().unwrap(),
                body: tauri::ipc::InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().expect("a JSON answer"))
    }
}
