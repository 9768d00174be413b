//! The introspect policy: ask the issuer (RFC 7662) when the feed is stale, reusing
//! an answer for the same token briefly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ring::digest::{SHA256, digest};
use tokio::time::Instant;

use crate::{Rejection, Shared};

/// Answers kept at most; beyond that the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// By the token's SHA-256 (never the token itself): active, and when it was asked.
#[derive(Default)]
pub(crate) struct Cache(Mutex<HashMap<[u8; 32], (bool, Instant)>>);

pub(crate) async fn check(shared: &Shared, token: &str) -> Result<(), Rejection> {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    let keep = shared.settings.introspect_cache;
    let cached = shared
        .introspections
        .0
        .lock()
        .expect("cache")
        .get(&key)
        .copied();
    let active = match cached {
        Some((active, at)) if at.elapsed() < keep => active,
        _ => {
            let active = ask(shared, token).await?;
            let mut cache = shared.introspections.0.lock().expect("cache");
            if cache.len() >= MAX_ENTRIES {
                cache.retain(|_, (_, at)| at.elapsed() < keep);
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(key, (active, Instant::now()));
            active
        }
    };
    if active {
        Ok(())
    } else {
        Err(Rejection::Inactive)
    }
}

async fn ask(shared: &Shared, token: &str) -> Result<bool, Rejection> {
    let endpoint = shared
        .endpoints
        .introspection
        .as_ref()
        .ok_or(Rejection::StateUnknown)?;
    let s = &shared.settings;
    let resp = shared
        .http
        .post(endpoint)
        .form(&[
            ("client_id", s.client_id.as_str()),
            ("client_secret", s.client_secret.as_str()),
            ("token", token),
        ])
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|_| Rejection::StateUnknown)?;
    if !resp.status().is_success() {
        tracing::warn!(status = %resp.status(), "introspection failed");
        return Err(Rejection::StateUnknown);
    }
    let body: serde_json::Value = resp.json().await.map_err(|_| Rejection::StateUnknown)?;
    Ok(body["active"] == true)
}
