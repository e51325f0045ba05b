use stagepass_core::paths;
use stagepass_core::presets::{self, PresetError, PresetInput, WriteOutcome};

use crate::cli::{ConfigAction, ConfigInitArgs};
use crate::exit::CliError;

pub fn run(action: ConfigAction) -> Result<(), CliError> {
    match action {
        ConfigAction::Init(args) => init(args),
    }
}

fn init(args: ConfigInitArgs) -> Result<(), CliError> {
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
    let rendered = presets::render(&args.preset, &input)
        .map_err(|err: PresetError| CliError::Usage(err.to_string()))?;
    if args.print {
        out!("{}", rendered.toml);
        return Ok(());
    }
    let path = paths::config_file();
    let outcome = presets::add_profile(&path, &rendered, args.force).map_err(|err| match err {
        stagepass_core::Error::Io { .. } => CliError::Io(std::io::Error::other(err.to_string())),
        err => CliError::Config(err.to_string()),
    })?;
    let done = match outcome {
        WriteOutcome::Created => "created",
        WriteOutcome::Appended => "added to",
        WriteOutcome::Replaced => "replaced (the old one is kept, commented out) in",
    };
    errln!("profile `{}` {done} {}", rendered.name, path.display());
    errln!(
        "next: set up the client at the IdP ({} in the stagepass repository), then\n  \
         stagepass doctor {name}\n  stagepass login {name}",
        rendered.guide,
        name = rendered.name
    );
    Ok(())
}
