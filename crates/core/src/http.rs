//! The one HTTP client stagepass uses to talk to IdPs.
//!
//! Every call has a timeout and a response size limit, redirects are never followed (a
//! token endpoint that redirects is misconfigured or hostile), and plain `http://` is refused
//! except on loopback.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::tokens::ClockSkew;
use crate::url_policy::is_secure_or_loopback;

/// Discovery documents, JWKS and token responses are a few KiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Where a redirect points: its `Location` header, when it is valid text. Redirects are never
/// followed; callers read the target to explain or to parse it.
pub fn redirect_location<B>(response: &http::Response<B>) -> Option<&str> {
    response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
}

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub connect_timeout: Duration,
    /// Whole request, from connect to the last byte of the body.
    pub request_timeout: Duration,
    pub max_body: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// How long an idle connection to an IdP stays open for the next request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    /// 5xx and 429: the IdP is down or overloaded, which is an outage, not an answer.
    #[error("the server answered HTTP {0}")]
    Unavailable(u16),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("refusing plain http to {0}: only https, or http on loopback, is allowed")]
    Insecure(String),
    #[error("{0}")]
    Other(String),
}

impl HttpError {
    /// A failure of the network or of an overloaded server, which the same request may get
    /// past a little later; a body too large or a plain-http URL fails the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Timeout(_)
            | HttpError::Connect(_)
            | HttpError::Unavailable(_)
            | HttpError::Other(_) => true,
            HttpError::TooLarge(_) | HttpError::Insecure(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    limits: HttpLimits,
    /// From the `Date` header of the latest response that had one.
    skew: std::sync::Arc<std::sync::Mutex<ClockSkew>>,
}

impl HttpClient {
    pub fn new(limits: HttpLimits) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            // Below the 5 s keep-alive of Node's and Apache's servers: a connection the server
            // closes while a request is on its way fails that request (hyper resends only one
            // it had not started to send), so the client lets go of idle ones first.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("stagepass/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| HttpError::Other(format!("cannot build the HTTP client: {err}")))?;
        Ok(HttpClient {
            inner,
            limits,
            skew: Default::default(),
        })
    }

    /// How far the local clock runs ahead of the servers this client talks to, as of the
    /// latest response with a `Date` header.
    pub fn clock_skew(&self) -> ClockSkew {
        *self
            .skew
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn note_date(&self, headers: &reqwest::header::HeaderMap) {
        let date = headers
            .get(reqwest::header::DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| httpdate::parse_http_date(value).ok());
        if let Some(date) = date {
            *self
                .skew
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) =
                ClockSkew::between(std::time::SystemTime::now(), date);
        }
    }

    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Builds and executes a request, with stagepass's errors: a request that cannot be
    /// built is a bad answer `during` the step, a failed call says which URL was unreachable.
    pub(crate) async fn send(
        &self,
        request: http::request::Builder,
        body: Vec<u8>,
        during: &'static str,
    ) -> crate::Result<HttpResponse> {
        let request = request
            .body(body)
            .map_err(|err| crate::Error::BadResponse {
                during,
                reason: err.to_string(),
            })?;
        let url = request.uri().to_string();
        self.execute(request)
            .await
            .map_err(|source| crate::Error::Unreachable { url, source })
    }

    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = url::Url::parse(&request.uri().to_string())
            .map_err(|err| HttpError::Other(format!("bad URL {}: {err}", request.uri())))?;
        if !is_secure_or_loopback(&url) {
            return Err(HttpError::Insecure(url.to_string()));
        }
        let (parts, body) = request.into_parts();
        let mut builder = self.inner.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let classify = |err: reqwest::Error| {
            if err.is_timeout() {
                HttpError::Timeout(self.limits.request_timeout)
            } else if err.is_connect() {
                HttpError::Connect(error_chain(&err))
            } else {
                HttpError::Other(error_chain(&err))
            }
        };
        let mut response = builder.send().await.map_err(classify)?;
        self.note_date(response.headers());
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(HttpError::Unavailable(status.as_u16()));
        }
        if let Some(len) = response.content_length()
            && len as usize > self.limits.max_body
        {
            return Err(HttpError::TooLarge(self.limits.max_body));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.limits.max_body {
                return Err(HttpError::TooLarge(self.limits.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::builder().status(response.status());
        if let Some(headers) = out.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        out.body(body)
            .map_err(|err| HttpError::Other(err.to_string()))
    }
}

/// reqwest's Display hides the cause behind "error sending request for url (…)"; the chain
/// below it says what failed ("tcp connect error: Connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut current = Some(err);
    while let Some(cause) = current {
        let text = cause.to_string();
        if !text.starts_with("error sending request") && !text.starts_with("client error") {
            parts.push(text);
        }
        current = cause.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}
