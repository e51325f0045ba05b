//! The redirect URI and client checks: an authorization request and a code exchange with a
//! made-up code, neither of which signs anyone in, tell what the IdP thinks of the client.

use url::Url;

use super::{Check, ids};
use crate::http::HttpClient;
use crate::oidc::{LOOPBACK_CALLBACK_PATH, Provider, TokenEndpointProbe};
use crate::{Error, OAuthError};

/// Any port will do: the IdP must accept every port on a loopback redirect URI (RFC 8252
/// §7.3), and nothing listens during a probe.
const PROBE_PORT: u16 = 53682;

/// What the authorization endpoint made of a request.
enum Authorize {
    /// It went on to a login or consent page.
    Accepted,
    /// It refused the request on an error page, with the error it named (if any).
    Refused {
        status: u16,
        code: Option<String>,
    },
    /// It sent an error back to the redirect URI: client and redirect URI were accepted.
    ErrorToRedirect(OAuthError),
    Failed(Error),
}

async fn authorize(provider: &Provider, redirect_uri: &Url, http: &HttpClient) -> Authorize {
    let pending = match provider.authorization_request(redirect_uri, false) {
        Ok(pending) => pending,
        Err(err) => return Authorize::Failed(err),
    };
    match provider.probe_authorization(&pending, http).await {
        Ok(()) => Authorize::Accepted,
        Err(Error::AuthorizationRefused { status, code }) => Authorize::Refused { status, code },
        Err(Error::OAuth { source, .. }) => Authorize::ErrorToRedirect(source),
        Err(err) => Authorize::Failed(err),
    }
}

#[allow(
    clippy::expect_used,
    reason = "the host is one of our loopback literals and the path a constant: it always parses"
)]
fn loopback_uri(host: &str, port: Option<u16>, path: &str) -> Url {
    let port = port.map(|port| format!(":{port}")).unwrap_or_default();
    Url::parse(&format!("http://{host}{port}{path}")).expect("a loopback URL is valid")
}

fn is_client_error(code: Option<&str>) -> bool {
    matches!(code, Some("invalid_client" | "unauthorized_client"))
}

fn is_redirect_error(code: Option<&str>) -> bool {
    matches!(code, Some("invalid_redirect_uri" | "redirect_uri_mismatch"))
}

/// idp.redirect_uri, idp.client and, when the IdP refuses something else, idp.authorize.
pub(super) async fn client_checks(
    name: &str,
    provider: &Provider,
    http: &HttpClient,
) -> Vec<Check> {
    let redirect_uri = loopback_uri("127.0.0.1", Some(PROBE_PORT), LOOPBACK_CALLBACK_PATH);
    let outcome = authorize(provider, &redirect_uri, http).await;
    let mut checks = Vec::new();
    let client_id = provider.client_id();
    let register = format!(
        "register exactly http://127.0.0.1{LOOPBACK_CALLBACK_PATH} as a redirect URI of client \
         `{client_id}`, with any port allowed (RFC 8252 §7.3): no trailing slash, 127.0.0.1 \
         rather than localhost"
    );
    let mut client_unknown = false;
    match &outcome {
        Authorize::Accepted | Authorize::ErrorToRedirect(_) => checks.push(
            Check::ok(
                ids::IDP_REDIRECT_URI,
                "the IdP accepts the loopback redirect URI",
            )
            .evidence(format!("probed {redirect_uri}")),
        ),
        Authorize::Refused { code, .. } if is_client_error(code.as_deref()) => {
            client_unknown = code.as_deref() == Some("invalid_client");
            checks.push(Check::skip(
                ids::IDP_REDIRECT_URI,
                "the IdP refused the client before looking at the redirect URI (see idp.client)",
            ));
        }
        Authorize::Refused { status, code } => {
            let named = code.as_deref().unwrap_or("no error code on the page");
            let mut check = match accepted_variant(provider, http).await {
                Some((variant, what)) => Check::fail(
                    ids::IDP_REDIRECT_URI,
                    format!("the registered redirect URI {what}"),
                )
                .evidence(format!("refused: {redirect_uri} (HTTP {status}, {named})"))
                .evidence(format!("accepted: {variant}")),
                None if is_redirect_error(code.as_deref()) => Check::fail(
                    ids::IDP_REDIRECT_URI,
                    "the redirect URI stagepass uses is not registered for the client",
                )
                .evidence(format!("refused: {redirect_uri} (HTTP {status}, {named})")),
                None => Check::fail(
                    ids::IDP_REDIRECT_URI,
                    "the IdP refused the authorization request, most likely its redirect URI",
                )
                .evidence(format!("refused: {redirect_uri} (HTTP {status}, {named})")),
            };
            check = check.fix(register.clone());
            checks.push(check);
        }
        Authorize::Failed(err) => checks.push(
            Check::fail(
                ids::IDP_REDIRECT_URI,
                "the authorization endpoint could not be probed",
            )
            .evidence(err.to_string()),
        ),
    }
    checks.push(
        client_check(
            name,
            provider,
            &redirect_uri,
            client_unknown,
            &outcome,
            http,
        )
        .await,
    );
    if let Authorize::ErrorToRedirect(error) = &outcome
        && !is_client_error(Some(&error.code))
    {
        checks.push(
            Check::fail(
                ids::IDP_AUTHORIZE,
                format!("the IdP refuses the sign-in request: {}", error.code),
            )
            .evidence(error.to_string())
            .fix(authorize_fix(name, error, provider.scopes())),
        );
    }
    checks
}

/// The first spelling of the redirect URI the IdP accepts when the right one is refused,
/// with what that says about the registered one.
async fn accepted_variant(provider: &Provider, http: &HttpClient) -> Option<(Url, &'static str)> {
    let path = LOOPBACK_CALLBACK_PATH;
    let slash = format!("{path}/");
    let variants = [
        (
            loopback_uri("127.0.0.1", Some(PROBE_PORT), &slash),
            "has a trailing slash: stagepass redirects to /callback, not /callback/",
        ),
        (
            loopback_uri("localhost", Some(PROBE_PORT), path),
            "uses localhost: stagepass redirects to 127.0.0.1 (RFC 8252 §8.3)",
        ),
        (
            loopback_uri("127.0.0.1", None, path),
            "is matched with its port: the IdP must accept any port on the loopback redirect URI",
        ),
        (
            loopback_uri("[::1]", Some(PROBE_PORT), path),
            "uses [::1]: stagepass redirects to 127.0.0.1",
        ),
    ];
    for (variant, what) in variants {
        if let Authorize::Accepted | Authorize::ErrorToRedirect(_) =
            authorize(provider, &variant, http).await
        {
            return Some((variant, what));
        }
    }
    None
}

async fn client_check(
    name: &str,
    provider: &Provider,
    redirect_uri: &Url,
    client_unknown: bool,
    authorize: &Authorize,
    http: &HttpClient,
) -> Check {
    let client_id = provider.client_id();
    let key = format!("profiles.{name}.client_id");
    let make_public = "make it a public client with PKCE and no secret (Keycloak: Client \
                       authentication off; Okta: Native app, client authentication None; Entra: \
                       Allow public client flows; Auth0: Native app, authentication method None)";
    if client_unknown {
        return Check::fail(
            ids::IDP_CLIENT,
            format!("the IdP does not know client_id `{client_id}` (invalid_client)"),
        )
        .evidence("the authorization endpoint answered invalid_client")
        .fix(format!(
            "copy the client's ID (not its display name) from the IdP into `{key}`"
        ));
    }
    if let Authorize::Refused {
        code: Some(code), ..
    } = authorize
        && code == "unauthorized_client"
    {
        return Check::fail(
            ids::IDP_CLIENT,
            "the client may not use the authorization code flow (unauthorized_client)",
        )
        .fix("enable the authorization code grant (Keycloak: Standard flow) for the client");
    }
    let probe = match provider.probe_token_endpoint(redirect_uri, http).await {
        Ok(probe) => probe,
        Err(err) => {
            return Check::fail(ids::IDP_CLIENT, "the token endpoint could not be probed")
                .evidence(err.to_string());
        }
    };
    let evidence = format!("a code exchange with a made-up code was answered: {probe:?}");
    match probe {
        TokenEndpointProbe::Refused(error) if error.code == "invalid_grant" => Check::ok(
            ids::IDP_CLIENT,
            match provider.secret_method() {
                None => format!("the IdP accepts `{client_id}` as a public client"),
                Some(method) => format!(
                    "the IdP accepts `{client_id}` with its client secret ({})",
                    method.name()
                ),
            },
        )
        .evidence("a made-up code was refused with invalid_grant, after the client was accepted"),
        TokenEndpointProbe::Refused(error) if wants_a_secret(&error) => {
            secret_refused(name, provider, &error, make_public)
        }
        TokenEndpointProbe::Refused(error) if error.code == "unauthorized_client" => Check::fail(
            ids::IDP_CLIENT,
            "the client may not use the authorization code grant (unauthorized_client)",
        )
        .evidence(format!("the token endpoint answered {error}"))
        .fix("enable the authorization code and refresh token grants for the client"),
        _ => Check::warn(
            ids::IDP_CLIENT,
            "the token endpoint's answer to a made-up code is not the expected invalid_grant",
        )
        .evidence(evidence)
        .fix(format!(
            "if sign-in fails at the code exchange, check `{key}` and the client's settings"
        )),
    }
}

/// The token endpoint refused the client's credentials: a stored secret that no longer
/// matches (rotated at the IdP), or a confidential client that sent none.
fn secret_refused(name: &str, provider: &Provider, error: &OAuthError, make_public: &str) -> Check {
    let client_id = provider.client_id();
    let set_secret = format!(
        "copy the client's current secret from the IdP and run `stagepass config set-secret \
         {name}` (it reads the secret from standard input)"
    );
    match provider.secret_method() {
        Some(method) => Check::fail(
            ids::IDP_CLIENT,
            format!(
                "the IdP refuses the stored client secret of `{client_id}`: it was rotated or is \
                 stale"
            ),
        )
        .evidence(format!(
            "the token endpoint answered {error} to the secret sent as {}",
            method.name()
        ))
        .fix(set_secret),
        None => Check::fail(
            ids::IDP_CLIENT,
            format!(
                "the IdP wants a client secret from `{client_id}`: it is a confidential client"
            ),
        )
        .evidence(format!("the token endpoint answered {error}"))
        .evidence("no secret was sent (the profile is a public client), so a stale or rotated secret is not the cause")
        .fix(format!(
            "{make_public}; or keep it confidential: set `client_auth = \"secret\"` in [profiles.{name}], then \
             {set_secret}"
        )),
    }
}

/// The token endpoint refused the client for want of a secret: `invalid_client` (RFC 6749
/// §5.2), or Keycloak's `unauthorized_client` "Invalid client or Invalid client credentials"
/// for a confidential client that sent none (the client itself is known: the authorization
/// endpoint accepted it).
fn wants_a_secret(error: &OAuthError) -> bool {
    error.code == "invalid_client"
        || missing_secret(error)
        || (error.code == "unauthorized_client"
            && error
                .description
                .as_deref()
                .is_some_and(|text| text.contains("client credentials")))
}

/// Google's answer to a Desktop app client that sent no secret: `invalid_request` with
/// "client_secret is missing." (the secret is required on its token endpoint, see
/// <https://developers.google.com/identity/protocols/oauth2/native-app#exchange-authorization-code>).
pub fn missing_secret(error: &OAuthError) -> bool {
    error.code == "invalid_request"
        && error
            .description
            .as_deref()
            .is_some_and(|text| text.contains("client_secret"))
}

fn authorize_fix(name: &str, error: &OAuthError, scopes: &[String]) -> String {
    match error.code.as_str() {
        // Keycloak refuses offline_access with invalid_scope when it is not among the client's
        // scopes, and its description lists every requested scope, not the refused one.
        "invalid_scope" if scopes.iter().any(|scope| scope == "offline_access") => format!(
            "allow offline_access for the client at the IdP (Keycloak: the client's Client \
             scopes tab > Add client scope > offline_access, Optional), or remove the scopes the \
             client may not request from `profiles.{name}.scopes`"
        ),
        "invalid_scope" => format!(
            "remove the scopes the client may not request from `profiles.{name}.scopes`, or \
             allow them for the client at the IdP"
        ),
        "invalid_target" => format!(
            "the IdP does not accept `profiles.{name}.audience` as a resource for this client: \
             register the API (resource indicator) at the IdP or fix the audience"
        ),
        _ => "see the IdP's log for the request's client_id".to_string(),
    }
}
