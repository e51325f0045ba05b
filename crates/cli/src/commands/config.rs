use stagepass_core::paths;
use stagepass_core::presets::{self, PresetInput, WriteOutcome};

use crate::agent_link;
use crate::cli::{ConfigAction, ConfigInitArgs, SetSecretArgs};
use crate::error::{CommandError, Kind};
use crate::secret_input;

pub fn run(action: ConfigAction) -> Result<(), CommandError> {
    match action {
        ConfigAction::Init(args) => init(args),
        ConfigAction::SetSecret(args) => set_secret(args),
    }
}

/// The agent stores the secret: it alone touches the keychain.
fn set_secret(args: SetSecretArgs) -> Result<(), CommandError> {
    let secret = if args.delete {
        None
    } else {
        Some(secret_input::read(&format!(
            "Client secret for profile `{}` (not shown): ",
            args.profile
        ))?)
    };
    let (report, _) =
        agent_link::call(|client| client.set_client_secret(args.profile.clone(), secret.clone()))?;
    let profile = &report.profile;
    match (args.delete, report.changed) {
        (false, _) => errln!("stored the client secret of `{profile}` in the keychain"),
        (true, true) => errln!("deleted the client secret of `{profile}` from the keychain"),
        (true, false) => errln!("the keychain held no client secret for `{profile}`"),
    }
    if !args.delete && !report.in_use {
        errln!(
            "note: profile `{profile}` is a public client, so the secret is not sent yet: add\n  \
             client_auth = \"secret\"\nto [profiles.{profile}] in {}",
            paths::config_file().display()
        );
    }
    Ok(())
}

fn init(args: ConfigInitArgs) -> Result<(), CommandError> {
    let input = PresetInput {
        name: args.name,
        client_id: args.client_id,
        issuer: args.issuer,
        realm: args.realm,
        tenant: args.tenant,
        domain: args.domain,
        audience: args.audience,
    };
    // An unsupported preset is refused like a bad flag value: nothing is written.
    let rendered = presets::render(&args.preset, &input)?;
    if args.print {
        out!("{}", rendered.toml);
        return Ok(());
    }
    let path = paths::config_file();
    let outcome = presets::add_profile(&path, &rendered, args.force).map_err(|err| {
        // Its messages already say what to do (--force, --name, fix the file first), so
        // not the generic "fix the config" hint a core config error gets.
        let kind = match err {
            stagepass_core::Error::Io { .. } => Kind::Unexpected,
            _ => Kind::Config,
        };
        CommandError::new(kind, err.to_string()).with_source(err)
    })?;
    let done = match outcome {
        WriteOutcome::Created => "created",
        WriteOutcome::Appended => "added to",
        WriteOutcome::Replaced => "replaced (the old one is kept, commented out) in",
    };
    errln!("profile `{}` {done} {}", rendered.name, path.display());
    if rendered.needs_secret {
        errln!(
            "next: store the client's secret in the keychain (it never goes in the config):\n  \
             stagepass config set-secret {}",
            rendered.name
        );
    }
    errln!(
        "next: set up the client at the IdP ({} in the stagepass repository), then\n  \
         stagepass doctor {name}\n  stagepass login {name}",
        rendered.guide,
        name = rendered.name
    );
    Ok(())
}
