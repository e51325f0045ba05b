//! One file per request type.

mod backstage;
mod claims;
mod credential;
mod login;
mod logout;
mod status;
mod subscribe;
mod token;

pub(crate) use login::SharedLogin;

use std::time::Duration;

use stagepass_proto::{Request, Response};

use crate::conn::Connection;
use crate::sessions::Agent;

/// `pid`: the caller's, from the socket's peer credentials.
///
/// Every request but the token ones is boxed: a future is as large as its largest state, and
/// each connection's task is allocated and copied at that size, so the rare requests (a
/// sign-in, a subscription, a grant) must not make every `GetToken` carry their ~13 KB.
pub(crate) async fn dispatch(
    agent: &Agent,
    conn: &mut Connection,
    request: Request,
    pid: Option<i32>,
) -> Response {
    if let Some(refused) = crate::delegation::refuse_held(agent, &request, pid) {
        return Response::Error(refused);
    }
    let result = match request {
        Request::Status => Box::pin(status::status(agent)).await,
        Request::GetToken {
            profile,
            kind,
            min_valid_secs,
            interactive,
            browser_available,
        } => {
            let sign_in = login::SignInRequest::when(interactive, browser_available, pid);
            token::answer(
                agent,
                conn,
                profile.as_deref(),
                kind,
                Duration::from_secs(min_valid_secs),
                sign_in,
            )
            .await
        }
        Request::Claims { profile } => Box::pin(claims::claims(agent, profile.as_deref())).await,
        Request::Login {
            profile,
            flow,
            browser_available,
        } => {
            let request = login::SignInRequest {
                flow,
                browser_available,
                pid,
            };
            Box::pin(login::login(agent, conn, profile.as_deref(), request)).await
        }
        Request::Logout { profile } => Box::pin(logout::logout(agent, profile.as_deref())).await,
        Request::Subscribe => Box::pin(subscribe::subscribe(agent, conn)).await,
        Request::Credential {
            tool,
            url,
            bearer_ok,
            interactive,
            browser_available,
        } => {
            let sign_in = login::SignInRequest::when(interactive, browser_available, pid);
            credential::credential(agent, conn, tool, &url, bearer_ok, sign_in).await
        }
        Request::RejectCredential { tool, url, token } => {
            credential::reject(agent, tool, &url, &token)
        }
        Request::BackstageWhoami { profile } => {
            Box::pin(backstage::whoami(agent, profile.as_deref())).await
        }
        Request::ProxyLaunch { route } => crate::proxy::launch(agent, route.as_deref()),
        Request::RemoteGrant(request) => Box::pin(crate::remote::grant(agent, request)).await,
        Request::RemoteList => Ok(crate::remote::list(agent)),
        Request::RemoteRevoke { name } => Box::pin(crate::remote::revoke(agent, &name)).await,
        Request::DelegateCreate(request) => {
            Box::pin(crate::delegation::create(agent, request)).await
        }
        Request::DelegateList => Ok(crate::delegation::list(agent)),
        Request::DelegateRevoke { name } => {
            Box::pin(crate::delegation::revoke_request(agent, &name)).await
        }
        Request::DelegateHold { name } => {
            Box::pin(crate::delegation::hold(agent, conn, &name, pid)).await
        }
        Request::DelegatePending => Ok(crate::delegation::answer::pending(agent)),
        Request::DelegateAnswer { id, decision } => {
            crate::delegation::answer::answer(agent, &id, decision)
        }
        Request::SetClientSecret { profile, secret } => {
            Box::pin(crate::client_secret::set(agent, &profile, secret)).await
        }
        Request::Shutdown => {
            agent.shutdown.notify_one();
            Ok(Response::ShuttingDown)
        }
    };
    result.unwrap_or_else(Response::Error)
}
