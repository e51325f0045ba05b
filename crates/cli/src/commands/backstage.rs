use serde_json::json;

use crate::agent_link;
use crate::cli::{BackstageAction, ProfileJsonArgs};
use crate::error::CommandError;
use crate::output::print_json;

pub fn run(action: BackstageAction) -> Result<(), CommandError> {
    match action {
        BackstageAction::Whoami(args) => whoami(args),
    }
}

fn whoami(args: ProfileJsonArgs) -> Result<(), CommandError> {
    let profile = &args.profile.profile;
    let (identity, _) = agent_link::call(|client| client.backstage_whoami(profile.clone()))?;
    if args.json.json {
        print_json(&json!({
            "profile": identity.profile,
            "url": identity.url,
            "user_entity_ref": identity.user_entity_ref,
            "display_name": identity.display_name,
            "email": identity.email,
            "ownership_entity_refs": identity.ownership_entity_refs,
            "entity": identity.entity,
        }))?;
        return Ok(());
    }
    outln!("profile    {} ({})", identity.profile, identity.url);
    outln!("user       {}", identity.user_entity_ref);
    if let Some(name) = &identity.display_name {
        outln!("name       {name}");
    }
    if let Some(email) = &identity.email {
        outln!("email      {email}");
    }
    outln!("ownership  {}", identity.ownership_entity_refs.join(", "));
    match &identity.entity {
        Some(entity) => {
            let member_of = entity
                .pointer("/spec/memberOf")
                .and_then(|groups| groups.as_array())
                .map(|groups| {
                    groups
                        .iter()
                        .filter_map(|group| group.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            outln!("catalog    User entity found; memberOf: {member_of}");
        }
        None => outln!(
            "catalog    no User entity under {} (the catalog may have dropped the user)",
            identity.user_entity_ref
        ),
    }
    Ok(())
}
