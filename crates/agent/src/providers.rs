//! Discovered providers, cached per profile for [`PROVIDER_TTL`].
//!
//! Discovery is single-flight per profile: callers for one profile queue behind one fetch
//! and share its result. Nothing is held across the network wait but that profile's own
//! slot, so an IdP that hangs stalls its own profile only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::sync::lock;
use stagepass_core::config::Profile;
use stagepass_core::oidc::Provider;

/// Discovery documents and keys change rarely; an hour bounds how long a rotated signing
/// key can go unnoticed (a verification failure also drops the entry).
pub(crate) const PROVIDER_TTL: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub(crate) struct Providers {
    /// Held only to find or add a slot, never across an await.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One profile's provider; its lock is held across that profile's discovery.
type Slot = tokio::sync::Mutex<Option<Cached>>;

struct Cached {
    profile: Profile,
    provider: Arc<Provider>,
    fetched_at: SystemTime,
}

impl Providers {
    /// The provider of profile `name`; `discover` runs (only) when it is missing, stale or for
    /// other settings. `now` is the agent's clock.
    pub(crate) async fn get(
        &self,
        name: &str,
        profile: &Profile,
        now: impl Fn() -> SystemTime,
        discover: impl Future<Output = stagepass_core::Result<Provider>>,
    ) -> stagepass_core::Result<Arc<Provider>> {
        let slot = self.slot(name);
        let mut cached = slot.lock().await;
        if let Some(cached) = cached.as_ref()
            && cached.profile == *profile
            && now() < cached.fetched_at + PROVIDER_TTL
        {
            return Ok(cached.provider.clone());
        }
        let provider = Arc::new(discover.await?);
        *cached = Some(Cached {
            profile: profile.clone(),
            provider: provider.clone(),
            fetched_at: now(),
        });
        Ok(provider)
    }

    /// Drops the provider of `name`. A discovery under way finishes into the dropped slot;
    /// the next caller starts afresh.
    pub(crate) fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn slot(&self, name: &str) -> Arc<Slot> {
        self.lock().entry(name.to_string()).or_default().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        lock(&self.slots)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use stagepass_core::config::Config;
    use stagepass_core::http::{HttpClient, HttpLimits};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn profile(issuer: &str) -> Profile {
        let text = format!("[profiles.p]\nissuer = \"{issuer}\"\nclient_id = \"stagepass-test\"\n");
        let mut config = Config::parse(Path::new("/test/stagepass.toml"), &text).unwrap();
        config.profiles.remove("p").unwrap()
    }

    /// Accepts connections and never answers them: an IdP that hangs.
    async fn hanging_idp() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        base
    }

    /// Answers discovery and an empty JWKS; counts the discovery documents served.
    async fn working_idp() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let (issuer, count) = (base.clone(), served.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (issuer, count) = (issuer.clone(), count.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let body = if request.starts_with(b"GET /jwks") {
                        serde_json::json!({ "keys": [] })
                    } else {
                        count.fetch_add(1, Ordering::SeqCst);
                        serde_json::json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/authorize"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/jwks"),
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        })
                    }
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        (base, served)
    }

    #[tokio::test]
    async fn a_hanging_idp_stalls_its_own_profile_only() {
        let providers = Arc::new(Providers::default());
        let http = HttpClient::new(HttpLimits::default()).unwrap();
        let stuck = profile(&hanging_idp().await);
        let (issuer, served) = working_idp().await;
        let fine = profile(&issuer);

        let waiting = {
            let (providers, http) = (providers.clone(), http.clone());
            tokio::spawn(async move {
                providers
                    .get(
                        "a",
                        &stuck,
                        SystemTime::now,
                        Provider::discover(&stuck, &http),
                    )
                    .await
                    .map(|_| ())
            })
        };
        // A is inside its discovery, waiting on the IdP, before B asks.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());

        let started = std::time::Instant::now();
        let provider = tokio::time::timeout(
            Duration::from_secs(3),
            providers.get(
                "b",
                &fine,
                SystemTime::now,
                Provider::discover(&fine, &http),
            ),
        )
        .await
        .expect("B waited for A's hanging IdP")
        .unwrap();
        assert_eq!(provider.issuer(), issuer);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(!waiting.is_finished(), "A is still stuck");

        // B again: cached.
        let again = providers
            .get(
                "b",
                &fine,
                SystemTime::now,
                Provider::discover(&fine, &http),
            )
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&again, &provider));
        assert_eq!(served.load(Ordering::SeqCst), 1);

        // Forgotten, then asked for by five at once: one fetch, shared.
        providers.forget("b");
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let (providers, http, fine) = (providers.clone(), http.clone(), fine.clone());
                tokio::spawn(async move {
                    providers
                        .get(
                            "b",
                            &fine,
                            SystemTime::now,
                            Provider::discover(&fine, &http),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut fetched = Vec::new();
        for caller in callers {
            fetched.push(caller.await.unwrap());
        }
        assert!(fetched.iter().all(|other| Arc::ptr_eq(other, &fetched[0])));
        assert!(!Arc::ptr_eq(&fetched[0], &provider));
        assert_eq!(served.load(Ordering::SeqCst), 2);
        waiting.abort();
    }
}
