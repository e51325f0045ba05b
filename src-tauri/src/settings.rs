//! The settings window's edits to the config file. It is the same TOML the CLI reads; edits
//! go through `toml_edit` so the user's comments, ordering and keys the UI does not know
//! survive, and every result is checked with the core's own parser before it is written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stagepass_core::config::{
    BACKSTAGE_SCOPES, Config, Desktop, FlowPreference, GITHUB_SCOPES, Profile, ProfileKind,
    ProfileKindTag,
};
use toml_edit::{Array, DocumentMut, Item, Table, Value, value};

use crate::agent::TrayError;

/// A profile as the form edits it. For `kind = "backstage"` the form edits `url`; `issuer`
/// is shown as derived from it, and an empty `client_id` means Backstage's CLI client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileForm {
    pub name: String,
    #[serde(default)]
    pub kind: ProfileKindTag,
    #[serde(default)]
    pub url: Option<String>,
    /// A Backstage behind oauth2-proxy signs in through this OIDC profile; the form keeps it
    /// and checks that profile's issuer instead.
    #[serde(default)]
    pub via_profile: Option<String>,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub flow: FlowPreference,
    pub groups_claim: Option<String>,
}

impl ProfileForm {
    pub fn from_profile(name: &str, profile: &Profile) -> ProfileForm {
        // An empty client_id stands for Backstage's CLI client, and a Backstage behind a
        // proxy has no client of its own to show.
        let (url, via_profile, client_id) = match &profile.kind {
            ProfileKind::Oidc { client_id, .. } => (None, None, client_id.clone()),
            ProfileKind::Backstage { url, via, .. } => (
                Some(url.clone()),
                via.as_ref().map(|via| via.profile.clone()),
                if profile.uses_backstage_cli_client() || via.is_some() {
                    String::new()
                } else {
                    profile.client_id().to_string()
                },
            ),
            ProfileKind::Github { url, client_id, .. } => {
                (Some(url.clone()), None, client_id.clone())
            }
        };
        ProfileForm {
            name: name.to_string(),
            kind: profile.tag(),
            url,
            via_profile,
            issuer: profile.issuer().into_owned(),
            client_id,
            scopes: profile.scopes().to_vec(),
            audience: profile.audience().map(String::from),
            flow: profile.flow,
            groups_claim: profile.groups_claim.clone(),
        }
    }

    /// The core's profile, for discovery before saving.
    pub fn to_profile(&self) -> Result<Profile, TrayError> {
        // Alone in a config, a `via_profile` would name a missing profile.
        let alone = ProfileForm {
            via_profile: None,
            ..self.clone()
        };
        let text = format!("[profiles.p]\n{}", profile_table(&alone));
        Config::parse(Path::new("(form)"), &text)
            .map(|config| config.profiles["p"].clone())
            .map_err(|err| TrayError::new(err.to_string().replace("profiles.p.", "")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHostForm {
    pub url: String,
    pub profile: String,
    /// `basic` or `bearer`.
    pub auth: String,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsView {
    pub config_path: String,
    pub profiles: Vec<ProfileForm>,
    pub git_hosts: Vec<GitHostForm>,
    pub desktop: Desktop,
}

/// The config file, parsed for editing.
pub struct ConfigEditor {
    path: PathBuf,
    document: DocumentMut,
}

impl ConfigEditor {
    /// Opens `path`; a missing file is an empty config (the first save creates it).
    pub fn open(path: &Path) -> Result<ConfigEditor, TrayError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(TrayError::new(format!(
                    "cannot read {}: {err}",
                    path.display()
                )));
            }
        };
        let document = text.parse::<DocumentMut>().map_err(|err| {
            TrayError::new(format!("{} is not valid TOML: {err}", path.display()))
        })?;
        Ok(ConfigEditor {
            path: path.to_path_buf(),
            document,
        })
    }

    pub fn text(&self) -> String {
        self.document.to_string()
    }

    /// The config as the CLI and agent read it.
    pub fn parsed(&self) -> Result<Config, TrayError> {
        Config::parse(&self.path, &self.text()).map_err(|err| TrayError::new(err.to_string()))
    }

    pub fn view(&self) -> Result<SettingsView, TrayError> {
        let config = self.parsed()?;
        Ok(SettingsView {
            config_path: self.path.display().to_string(),
            profiles: config
                .profiles
                .iter()
                .map(|(name, profile)| ProfileForm::from_profile(name, profile))
                .collect(),
            git_hosts: config
                .git
                .iter()
                .map(|host| GitHostForm {
                    url: host.url.clone(),
                    profile: host.profile.clone(),
                    auth: serde_json::to_value(host.auth)
                        .ok()
                        .and_then(|auth| auth.as_str().map(String::from))
                        .unwrap_or_default(),
                    username: host.username.clone(),
                })
                .collect(),
            desktop: config.desktop,
        })
    }

    /// Adds a profile, or edits the one called `original` (renaming it, and the git and
    /// docker entries that name it, when the name changed). Keys the form does not know stay.
    pub fn upsert_profile(
        &mut self,
        original: Option<&str>,
        form: &ProfileForm,
    ) -> Result<(), TrayError> {
        let profiles = table_at(self.document.as_table_mut(), "profiles")?;
        profiles.set_implicit(true);
        let renamed = original.filter(|original| *original != form.name);
        if (original.is_none() || renamed.is_some()) && profiles.contains_key(&form.name) {
            return Err(TrayError::new(format!(
                "a profile called `{}` exists already",
                form.name
            )));
        }
        let mut table = match original.and_then(|name| profiles.remove(name)) {
            Some(Item::Table(table)) => table,
            Some(_) => return Err(TrayError::new("the profile is not a table")),
            None => Table::new(),
        };
        write_profile_keys(&mut table, form);
        profiles.insert(&form.name, Item::Table(table));
        if let Some(old) = renamed {
            self.rename_references(old, &form.name);
        }
        Ok(())
    }

    /// Removes a profile. Refused while a git or docker entry still sends its token.
    pub fn remove_profile(&mut self, name: &str) -> Result<(), TrayError> {
        let users = self.references(name);
        if !users.is_empty() {
            return Err(TrayError {
                message: format!("`{name}` is still used by {}", users.join(", ")),
                hint: Some("remove or change those entries first".into()),
            });
        }
        let profiles = table_at(self.document.as_table_mut(), "profiles")?;
        profiles
            .remove(name)
            .map(drop)
            .ok_or_else(|| TrayError::new(format!("no profile `{name}`")))
    }

    pub fn set_git_hosts(&mut self, hosts: &[GitHostForm]) -> Result<(), TrayError> {
        let existing = self
            .document
            .get_mut("git")
            .and_then(Item::as_array_of_tables_mut);
        let mut old: Vec<Table> = existing
            .map(|tables| tables.iter().cloned().collect())
            .unwrap_or_default();
        let mut tables = toml_edit::ArrayOfTables::new();
        for host in hosts {
            // An entry for the same URL keeps its other keys (username_from, token, comments).
            let mut table = match old
                .iter()
                .position(|t| t.get("url").and_then(Item::as_str) == Some(&host.url))
            {
                Some(index) => old.remove(index),
                None => Table::new(),
            };
            set_value(&mut table, "url", &host.url);
            set_value(&mut table, "profile", &host.profile);
            set_value(&mut table, "auth", &host.auth);
            set_optional(&mut table, "username", host.username.as_deref());
            tables.push(table);
        }
        if tables.is_empty() {
            self.document.remove("git");
        } else {
            self.document.insert("git", Item::ArrayOfTables(tables));
        }
        Ok(())
    }

    pub fn set_desktop(&mut self, desktop: &Desktop) -> Result<(), TrayError> {
        let table = table_at(self.document.as_table_mut(), "desktop")?;
        set_value(table, "notifications", desktop.notifications);
        set_optional(table, "backstage_url", desktop.backstage_url.as_deref());
        set_value(table, "quit_stops_agent", desktop.quit_stops_agent);
        Ok(())
    }

    /// Checks the edited config with the core's parser, then replaces the file atomically.
    pub fn save(&self) -> Result<(), TrayError> {
        self.parsed()?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let temporary = self.path.with_extension("toml.tmp");
            std::fs::write(&temporary, self.text())?;
            std::fs::rename(&temporary, &self.path)
        };
        write()
            .map_err(|err| TrayError::new(format!("cannot write {}: {err}", self.path.display())))
    }

    fn references(&self, profile: &str) -> Vec<String> {
        let mut users = Vec::new();
        for (key, label) in [("git", "url"), ("docker", "registry")] {
            if let Some(tables) = self.document.get(key).and_then(Item::as_array_of_tables) {
                for table in tables.iter() {
                    if table.get("profile").and_then(Item::as_str) == Some(profile) {
                        let what = table.get(label).and_then(Item::as_str).unwrap_or("?");
                        users.push(format!("[[{key}]] {what}"));
                    }
                }
            }
        }
        users
    }

    fn rename_references(&mut self, old: &str, new: &str) {
        for key in ["git", "docker"] {
            if let Some(tables) = self
                .document
                .get_mut(key)
                .and_then(Item::as_array_of_tables_mut)
            {
                for table in tables.iter_mut() {
                    if table.get("profile").and_then(Item::as_str) == Some(old) {
                        set_value(table, "profile", new);
                    }
                }
            }
        }
    }
}

fn table_at<'a>(root: &'a mut Table, key: &str) -> Result<&'a mut Table, TrayError> {
    root.entry(key)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| TrayError::new(format!("`{key}` in the config is not a table")))
}

/// Sets `key` to `new`, keeping the comments around the key and after the value.
fn set_value(table: &mut Table, key: &str, new: impl Into<Value>) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(existing) => {
            let decor = existing.decor().clone();
            *existing = new.into();
            *existing.decor_mut() = decor;
        }
        None => {
            table.insert(key, value(new));
        }
    }
}

fn set_optional(table: &mut Table, key: &str, text: Option<&str>) {
    match text.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => set_value(table, key, text),
        None => {
            table.remove(key);
        }
    }
}

fn flow_name(flow: FlowPreference) -> &'static str {
    match flow {
        FlowPreference::Auto => "auto",
        FlowPreference::Browser => "browser",
        FlowPreference::Device => "device",
    }
}

/// Writes the keys the form edits; every other key of `table` stays as it was. A Backstage
/// profile keeps only what its user chose: the core derives the issuer and the default
/// client from `url`, and refuses an `issuer` or `audience` next to it.
fn write_profile_keys(table: &mut Table, form: &ProfileForm) {
    match form.kind {
        ProfileKindTag::Oidc => {
            for backstage_only in ["kind", "url", "via_profile", "auth_provider"] {
                table.remove(backstage_only);
            }
            set_value(table, "issuer", &form.issuer);
            set_value(table, "client_id", &form.client_id);
            set_value(table, "scopes", form.scopes.iter().collect::<Array>());
            set_optional(table, "audience", form.audience.as_deref());
        }
        ProfileKindTag::Backstage => {
            set_value(table, "kind", "backstage");
            set_optional(table, "url", form.url.as_deref());
            set_optional(table, "via_profile", form.via_profile.as_deref());
            table.remove("issuer");
            table.remove("audience");
            set_optional(table, "client_id", Some(&form.client_id));
            if form.scopes.iter().map(String::as_str).eq(BACKSTAGE_SCOPES) {
                table.remove("scopes");
            } else {
                set_value(table, "scopes", form.scopes.iter().collect::<Array>());
            }
        }
        // GitHub: `url` (github.com when absent) and the app's client_id; nothing OIDC.
        ProfileKindTag::Github => {
            set_value(table, "kind", "github");
            set_optional(table, "url", form.url.as_deref());
            for not_github in ["issuer", "audience", "via_profile", "auth_provider"] {
                table.remove(not_github);
            }
            set_value(table, "client_id", &form.client_id);
            if form.scopes.iter().map(String::as_str).eq(GITHUB_SCOPES) {
                table.remove("scopes");
            } else {
                set_value(table, "scopes", form.scopes.iter().collect::<Array>());
            }
        }
    }
    set_optional(table, "groups_claim", form.groups_claim.as_deref());
    match form.flow {
        // `auto` is the default: written only when the file already said something.
        FlowPreference::Auto if !table.contains_key("flow") => {}
        flow => {
            set_value(table, "flow", flow_name(flow));
        }
    }
}

/// The profile's keys as TOML, for [`ProfileForm::to_profile`].
fn profile_table(form: &ProfileForm) -> String {
    let mut table = Table::new();
    write_profile_keys(&mut table, form);
    table.to_string()
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
