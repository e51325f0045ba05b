//! `stagepass kube-credential`: a client-go exec credential plugin
//! (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins>).

use std::io::{IsTerminal, Write};

use stagepass_client::TokenRequest;
use stagepass_proto::TokenKind;

use crate::agent_link;
use crate::cli::KubeCredentialArgs;
use crate::error::CommandError;
use crate::output::rfc3339;

const DEFAULT_API_VERSION: &str = "client.authentication.k8s.io/v1";
/// kubectl asks again this long before the token really expires, so a request never leaves
/// with a token that dies on the way.
const EXPIRY_MARGIN_SECS: u64 = 30;

pub fn run(args: KubeCredentialArgs) -> Result<(), CommandError> {
    agent_link::set_consumer("kube");
    // kubectl says which API version it speaks and whether it can interact with the user.
    let exec_info: serde_json::Value = std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let api_version = exec_info["apiVersion"]
        .as_str()
        .unwrap_or(DEFAULT_API_VERSION)
        .to_string();
    // kubectl before 1.22 (v1beta1) sends `"spec":{}` and hands the plugin its own stdin:
    // a terminal there is the only sign that the user is at hand.
    let kubectl_can_interact = exec_info["spec"]["interactive"]
        .as_bool()
        .unwrap_or_else(|| std::io::stdin().is_terminal());
    let interactive = kubectl_can_interact && agent_link::can_interact();
    let kind = if args.access_token {
        TokenKind::Access
    } else {
        TokenKind::Id
    };
    let request = TokenRequest {
        profile: args.profile.profile,
        kind,
        min_valid_secs: 2 * EXPIRY_MARGIN_SECS,
    };
    let grant = agent_link::ask(interactive, |client, interaction| {
        client.get_token(&request, interaction)
    })?;
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status<'a> {
        token: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        expiration_timestamp: Option<String>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ExecCredential<'a> {
        api_version: &'a str,
        kind: &'static str,
        status: Status<'a>,
    }
    let credential = ExecCredential {
        api_version: &api_version,
        kind: "ExecCredential",
        status: Status {
            token: grant.token.expose(),
            expiration_timestamp: grant
                .expires_at
                .map(|at| rfc3339(at.saturating_sub(EXPIRY_MARGIN_SECS))),
        },
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &credential).map_err(std::io::Error::from)?;
    writeln!(stdout)?;
    Ok(())
}
