//! The issuer's signing keys, cached by `Cache-Control: max-age`, refetched at once
//! on `keys.rotated` and at most once per interval on an unknown `kid`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::time::Instant;

/// One verification key: the algorithm of its JWK, and the signature check's
/// settings for it, built once per JWKS rather than per token.
pub(crate) struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) decoding: DecodingKey,
    /// The algorithm pinned to the JWK's; the claims are checked by
    /// `claims::check` (exact `iss`, `aud`, times with one leeway), not here.
    pub(crate) validation: Validation,
}

/// The keys of one JWKS document, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Key>,
}

impl KeySet {
    /// Parses a JWKS; keys that are unusable (no `kid`, not `use: sig`, an `alg` or
    /// `kty`/`crv` that do not fit) are skipped, never trusted.
    pub(crate) fn parse(doc: &Value) -> Self {
        let mut keys = HashMap::new();
        for jwk in doc["keys"].as_array().into_iter().flatten() {
            let Some(kid) = jwk["kid"].as_str() else {
                continue;
            };
            if jwk.get("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let Ok(alg) = tessera_jose::algorithm(jwk) else {
                continue;
            };
            match tessera_jose::public_key(alg, jwk) {
                Ok(decoding) => {
                    let mut validation = Validation::new(alg);
                    validation.required_spec_claims.clear();
                    validation.validate_exp = false;
                    validation.validate_aud = false;
                    let key = Key {
                        alg,
                        decoding,
                        validation,
                    };
                    keys.insert(kid.to_string(), key);
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping an unusable JWK"),
            }
        }
        Self { keys }
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

pub(crate) struct Jwks {
    uri: String,
    http: reqwest::Client,
    current: RwLock<Arc<KeySet>>,
    /// When the cached set should be fetched again (its `max-age`).
    pub(crate) expires: RwLock<Instant>,
    /// The last fetch made because of an unknown kid.
    unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
    unknown_kid_interval: Duration,
    fetches: AtomicU64,
}

/// Bounds on a `max-age`: at least a second, at most a day.
const MIN_AGE: Duration = Duration::from_secs(1);
const MAX_AGE: Duration = Duration::from_secs(86_400);
/// When the issuer gives no `max-age`.
const DEFAULT_AGE: Duration = Duration::from_secs(300);

impl Jwks {
    pub(crate) fn new(uri: String, http: reqwest::Client, unknown_kid_interval: Duration) -> Self {
        Self {
            uri,
            http,
            current: RwLock::default(),
            expires: RwLock::new(Instant::now()),
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
            unknown_kid_interval,
            fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.current.read().expect("jwks lock").clone()
    }

    pub(crate) fn set(&self, set: KeySet) {
        *self.current.write().expect("jwks lock") = Arc::new(set);
    }

    /// How many times the JWKS was fetched (for metrics, and to show floods are bounded).
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches the JWKS and swaps it in; the old set stays on failure.
    pub(crate) async fn fetch(&self) -> Result<(), reqwest::Error> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let resp = self.http.get(&self.uri).send().await?.error_for_status()?;
        let age = resp
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map_or(DEFAULT_AGE, max_age);
        let doc: Value = resp.json().await?;
        self.set(KeySet::parse(&doc));
        *self.expires.write().expect("jwks lock") = Instant::now() + age;
        Ok(())
    }

    /// On an unknown kid: refetch, unless a refetch for that reason happened within
    /// the interval (then the caller keeps the set it has). Concurrent callers wait
    /// for one fetch rather than each making their own.
    pub(crate) async fn refetch_for_unknown_kid(&self) {
        let mut last = self.unknown_kid_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.unknown_kid_interval) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch().await {
            tracing::warn!(error = %e, "JWKS refetch failed");
        }
    }
}

/// `max-age` of a `Cache-Control` value; `no-store`/`no-cache` count as the minimum.
fn max_age(cc: &str) -> Duration {
    let mut age = None;
    for d in cc.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_AGE;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age.unwrap_or(DEFAULT_AGE).clamp(MIN_AGE, MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn max_age_is_read_and_bounded() {
        assert_eq!(max_age("public, max-age=600"), Duration::from_secs(600));
        assert_eq!(max_age("max-age=0"), MIN_AGE);
        assert_eq!(max_age("no-store"), MIN_AGE);
        assert_eq!(max_age("public"), DEFAULT_AGE);
        assert_eq!(max_age("max-age=99999999"), MAX_AGE);
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let doc = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "kid": "good", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "ES256", "kid": "mismatch"},
            {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"},
        ]});
        let set = KeySet::parse(&doc);
        assert_eq!(set.len(), 1);
        assert!(set.get("good").is_some());
    }
}
