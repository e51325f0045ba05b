//! The loopback redirect listener of the browser sign-in (RFC 8252 §7.3): 127.0.0.1 on an
//! ephemeral port, one exact path, closed after the one valid callback. Any local user can
//! connect to it, so connections are capped, served concurrently and given little time.

use std::time::Duration;

use stagepass_core::html::escape;
use stagepass_core::oidc::{
    AuthorizationCode, CallbackError, LOOPBACK_CALLBACK_PATH as CALLBACK_PATH,
    PendingAuthorization, Provider,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use url::Url;

use crate::accept::{self, Gate};

const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// A browser sends its request at once; a connection silent this long is not the callback.
/// Connections are served side by side, so idle ones (another local user's, say) cost the
/// real callback nothing, and this only bounds how long each holds its place under the cap.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) struct LoopbackListener {
    listener: TcpListener,
    pub redirect_uri: Url,
}

/// The browser connection that delivered the callback, kept open so the page shown reflects
/// the end of the whole sign-in, code exchange included.
pub(crate) struct CallbackConnection {
    stream: TcpStream,
    /// Its place under the listener's cap, held until the page is sent.
    _place: OwnedSemaphorePermit,
}

/// A request to the callback path: its query string and the connection to answer on.
type Callback = (String, CallbackConnection);

impl LoopbackListener {
    pub(crate) async fn bind() -> std::io::Result<LoopbackListener> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{port}{CALLBACK_PATH}"))
            .map_err(std::io::Error::other)?;
        Ok(LoopbackListener {
            listener,
            redirect_uri,
        })
    }

    /// Serves requests until one carries this authorization's answer. Requests with another
    /// path or state get an error page and do not end the wait. Each connection is read in
    /// a task of its own; the tasks end with this wait (the set aborts them when dropped).
    pub(crate) async fn wait_for_callback(
        self,
        pending: &PendingAuthorization,
        provider: &Provider,
    ) -> (
        Result<AuthorizationCode, stagepass_core::Error>,
        CallbackConnection,
    ) {
        let mut gate = Gate::new(accept::Listener::SignIn);
        let mut connections: JoinSet<Option<Callback>> = JoinSet::new();
        loop {
            tokio::select! {
                (stream, permit) = gate.accept(|| self.listener.accept()) => {
                    connections.spawn(read_callback(stream, permit));
                }
                // A pattern that fails here would disable the branch until the next accept:
                // `Some` fails only for an empty set, which has nothing to wait for.
                Some(joined) = connections.join_next() => {
                    let Ok(Some((query, mut connection))) = joined else {
                        continue;
                    };
                    match pending.check_callback(&query, provider) {
                        Ok(code) => return (Ok(code), connection),
                        Err(CallbackError::Final(err)) => return (Err(err), connection),
                        Err(CallbackError::Foreign(reason)) => {
                            tracing::warn!("ignored a request to the sign-in listener: {reason}");
                            connections.spawn(async move {
                                respond(&mut connection.stream, 400, &Page::foreign()).await;
                                None
                            });
                        }
                    }
                }
            }
        }
    }
}

/// Reads one request; answers anything but a GET of the callback path with an error page.
async fn read_callback(mut stream: TcpStream, permit: OwnedSemaphorePermit) -> Option<Callback> {
    let target = tokio::time::timeout(REQUEST_TIMEOUT, read_target(&mut stream))
        .await
        .ok()??;
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    if path != CALLBACK_PATH {
        respond(&mut stream, 404, &Page::not_found()).await;
        return None;
    }
    Some((
        query.to_string(),
        CallbackConnection {
            stream,
            _place: permit,
        },
    ))
}

impl CallbackConnection {
    pub(crate) async fn finish(mut self, page: Page) {
        let status = if page.ok { 200 } else { 400 };
        respond(&mut self.stream, status, &page).await;
    }
}

/// Reads the request line and headers; returns the request target of a GET.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 || head.len() + read > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..read]);
    }
    let head = std::str::from_utf8(&head).ok()?;
    let mut request_line = head.lines().next()?.split(' ');
    match (request_line.next(), request_line.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, page: &Page) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = page.html();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         X-Frame-Options: DENY\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(response.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// The page the browser shows at the end of the sign-in.
pub(crate) struct Page {
    ok: bool,
    title: String,
    detail: String,
}

impl Page {
    pub(crate) fn signed_in(profile: &str, who: Option<&str>) -> Page {
        Page {
            ok: true,
            title: "Signed in".into(),
            detail: match who {
                Some(who) => format!(
                    "stagepass profile {profile} is signed in as {who}. You can close this tab."
                ),
                None => {
                    format!("stagepass profile {profile} is signed in. You can close this tab.")
                }
            },
        }
    }

    pub(crate) fn failed(message: &str, hint: Option<&str>) -> Page {
        Page {
            ok: false,
            title: "Sign-in failed".into(),
            detail: match hint {
                Some(hint) => format!("{message}. {hint}."),
                None => message.to_string(),
            },
        }
    }

    fn not_found() -> Page {
        Page {
            ok: false,
            title: "Not found".into(),
            detail: "This address only receives stagepass sign-in responses.".into(),
        }
    }

    fn foreign() -> Page {
        Page {
            ok: false,
            title: "Not this sign-in".into(),
            detail: "This response does not belong to the sign-in stagepass is waiting for \
                     (its state does not match). If you started a new sign-in, finish it in its \
                     own tab."
                .into(),
        }
    }

    fn html(&self) -> String {
        let color = if self.ok { "#1a7f37" } else { "#b42318" };
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>stagepass: {title}</title>\
             <style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#1f2328}}\
             h1{{color:{color};font-size:1.5em}}</style></head>\
             <body><h1>{title}</h1><p>{detail}</p></body></html>",
            title = escape(&self.title),
            detail = escape(&self.detail),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_the_idp_sent() {
        let page = Page::failed("bad <script>alert(1)</script>", None).html();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
    }
}
