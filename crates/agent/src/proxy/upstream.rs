//! HTTP clients for the upstreams: connection pools, TLS verified against the platform roots
//! plus a route's extra CA file, and failures put in words for 502/504 bodies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::reply::Body;

pub(crate) type Client = HyperClient<HttpsConnector<HttpConnector>, Body>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_IDLE: Duration = Duration::from_secs(60);

/// One client per distinct CA file, made on first use: reading the platform roots costs
/// milliseconds, a request should not.
#[derive(Default)]
pub(crate) struct Upstreams {
    clients: Mutex<HashMap<Option<PathBuf>, Client>>,
}

impl Upstreams {
    pub(crate) fn client(&self, ca_file: Option<&Path>) -> Result<Client, String> {
        let key = ca_file.map(Path::to_path_buf);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = build(ca_file)?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

fn build(ca_file: Option<&Path>) -> Result<Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable platform certificates are skipped: the extra CA may be all a route needs.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| format!("cannot read the CA file {}: {err}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no PEM certificate in {}", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| format!("bad certificate in {}: {err}", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| format!("TLS setup: {err}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .http1_writev(false)
        .build(https))
}

/// Why a request to the upstream failed, from the whole error chain ("connection refused",
/// "invalid peer certificate: UnknownIssuer").
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut words = vec![err.to_string()];
    let mut source = err.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !words.iter().any(|word| word.contains(&text)) {
            words.push(text);
        }
        source = err.source();
    }
    words.join(": ")
}
