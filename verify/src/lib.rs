//! Verify tessera access tokens offline, and refuse stale ones within a second.
//!
//! A [`Verifier`] reads the issuer's RFC 8414 metadata, caches its JWKS, and follows
//! its security event feed (`GET /events`), so that a token whose session was
//! revoked, whose user's roles changed or who was disabled, or whose signing key
//! was withdrawn is refused although its signature and `exp` are fine. See the
//! crate's README (`verify/README.md`) for what it guarantees and when, and
//! docs/protocol.md "Protecting an API" for the whole contract.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

mod claims;
mod feed;
mod introspect;
mod jwks;
mod layer;
mod rejection;
mod settings;
mod sse;
mod state;

#[cfg(feature = "axum")]
mod extract;

pub use claims::{Audience, Claims, ClaimsExt, LEEWAY};
#[cfg(feature = "axum")]
pub use extract::{Authenticated, Refusal};
pub use layer::{Requirement, VerifyLayer, VerifyService};
pub use rejection::Rejection;
pub use settings::{Settings, StalePolicy, StartError};

/// The feed's health, for the service's readiness check and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// An SSE stream is open.
    pub connected: bool,
    /// The first catch-up (one token lifetime of events) is done.
    pub synced: bool,
    /// Time since the feed last gave a sign of life (an event or a heartbeat).
    pub lag: Option<Duration>,
    /// Past `max_staleness`: the policy applies.
    pub stale: bool,
    /// The last event applied, where a reconnection resumes.
    pub last_event_id: Option<i64>,
    /// Streams opened so far: the first, then one per reconnection or renewal of the
    /// verifier's own token.
    pub connections: u64,
    /// JWKS documents fetched so far (start, schedule and unknown `kid`s).
    pub jwks_fetches: u64,
    /// Entries held: revoked sessions, users, revoked keys.
    pub tracked: (usize, usize, usize),
}

/// What the follower task and request handlers share.
pub(crate) struct Shared {
    pub settings: Settings,
    pub endpoints: Endpoints,
    pub http: reqwest::Client,
    pub jwks: jwks::Jwks,
    pub state: RwLock<state::Freshness>,
    pub connected: AtomicBool,
    pub synced: tokio::sync::watch::Sender<bool>,
    /// When the feed last gave a sign of life.
    pub alive: Mutex<Option<Instant>>,
    pub last_id: Mutex<Option<i64>>,
    pub connections: AtomicU64,
    pub introspections: introspect::Cache,
    /// Wakes the JWKS refresher (a `keys.rotated` event).
    pub keys_changed: tokio::sync::Notify,
}

pub(crate) struct Endpoints {
    pub token: String,
    pub events: String,
    pub introspection: Option<String>,
    /// The longest access-token lifetime, in seconds.
    pub ttl: i64,
}

/// Verifies access tokens. Cheap to clone; the feed is followed until the last clone drops.
#[derive(Clone)]
pub struct Verifier {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Verifier {
    /// Reads the issuer's metadata and starts following its feed and keys. Returns at
    /// once; until the first catch-up is done ([`Verifier::ready`]) tokens meet `policy`.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        // jsonwebtoken is built without a backend: without this, a process that is not
        // also the issuer (which installs it) panicked at its first token.
        tessera_jose::install();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| StartError::Metadata(e.to_string()))?;
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            settings.issuer.trim_end_matches('/')
        );
        let meta: serde_json::Value = async {
            http.get(&url)
                .timeout(Duration::from_secs(10))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e| StartError::Metadata(e.to_string()))?;
        let published = meta["issuer"].as_str().unwrap_or_default();
        if published != settings.issuer {
            return Err(StartError::IssuerMismatch {
                configured: settings.issuer.clone(),
                published: published.into(),
            });
        }
        let member = |name: &str| {
            meta[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| StartError::Metadata(format!("no {name}")))
        };
        let endpoints = Endpoints {
            token: member("token_endpoint")?,
            events: match &settings.events_endpoint {
                Some(e) => e.clone(),
                None => member("tessera_events_endpoint")?,
            },
            introspection: member("introspection_endpoint").ok(),
            ttl: meta["tessera_access_token_max_ttl"]
                .as_i64()
                .ok_or_else(|| StartError::Metadata("no tessera_access_token_max_ttl".into()))?,
        };
        let jwks = jwks::Jwks::new(
            member("jwks_uri")?,
            http.clone(),
            settings.unknown_kid_interval,
        );
        let shared = Arc::new(Shared {
            state: RwLock::new(state::Freshness::new(endpoints.ttl, 0)),
            introspections: introspect::Cache::default(),
            settings,
            endpoints,
            http,
            jwks,
            connected: AtomicBool::new(false),
            synced: tokio::sync::watch::channel(false).0,
            alive: Mutex::new(None),
            last_id: Mutex::new(None),
            connections: AtomicU64::new(0),
            keys_changed: tokio::sync::Notify::new(),
        });
        if let Err(e) = shared.jwks.fetch().await {
            tracing::warn!(error = %e, "JWKS fetch failed; retrying in the background");
        }
        let tasks = vec![
            tokio::spawn(feed::follow(shared.clone())),
            tokio::spawn(feed::refresh_keys(shared.clone())),
        ];
        Ok(Self {
            shared,
            _tasks: Arc::new(Tasks(tasks)),
        })
    }

    /// Waits up to `within` for the first catch-up; returns whether it is done.
    pub async fn ready(&self, within: Duration) -> bool {
        let mut rx = self.shared.synced.subscribe();
        tokio::time::timeout(within, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The settings the verifier was started with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// A snapshot of the feed's state, cheap enough for every readiness probe.
    pub fn health(&self) -> Health {
        let s = &self.shared;
        let lag = s.alive.lock().expect("alive").map(|t| t.elapsed());
        Health {
            connected: s.connected.load(Ordering::Relaxed),
            synced: *s.synced.borrow(),
            stale: self.stale(),
            lag,
            last_event_id: *s.last_id.lock().expect("last id"),
            connections: s.connections.load(Ordering::Relaxed),
            jwks_fetches: s.jwks.fetches(),
            tracked: s.state.read().expect("state").len(),
        }
    }

    /// Whether the policy applies now: not caught up yet, or out of touch with the
    /// feed for longer than the budget. An open stream counts as in touch: one that
    /// dies silently is dropped when its heartbeats stop (35 s).
    fn stale(&self) -> bool {
        let s = &self.shared;
        if !*s.synced.borrow() {
            return true;
        }
        if s.connected.load(Ordering::Relaxed) {
            return false;
        }
        s.alive
            .lock()
            .expect("alive")
            .is_none_or(|t| t.elapsed() > s.settings.max_staleness)
    }

    /// Verifies a bearer token: signature with the key its `kid` names (one
    /// rate-limited JWKS refetch when that kid is unknown), claims, then freshness.
    pub async fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        let (claims, kid) = match self.verify_signed(token) {
            Err(Unverified::UnknownKey) => {
                self.shared.jwks.refetch_for_unknown_kid().await;
                self.verify_signed(token).map_err(Unverified::rejection)?
            }
            other => other.map_err(Unverified::rejection)?,
        };
        self.check_fresh(&claims, &kid)?;
        if self.stale() {
            match self.shared.settings.policy {
                StalePolicy::Refuse => return Err(Rejection::StateUnknown),
                StalePolicy::Accept => {}
                StalePolicy::Introspect => introspect::check(&self.shared, token).await?,
            }
        }
        Ok(claims)
    }

    /// [`Verifier::verify`] without the network: an unknown `kid` is refused, and
    /// a stale feed under the introspect policy too.
    pub fn verify_offline(&self, token: &str) -> Result<Claims, Rejection> {
        let (claims, kid) = self.verify_signed(token).map_err(Unverified::rejection)?;
        self.check_fresh(&claims, &kid)?;
        if self.stale() && self.shared.settings.policy != StalePolicy::Accept {
            return Err(Rejection::StateUnknown);
        }
        Ok(claims)
    }

    fn check_fresh(&self, claims: &Claims, kid: &str) -> Result<(), Rejection> {
        self.shared.state.read().expect("state").check(claims, kid)
    }

    /// RFC 9068 §4 and RFC 8725: `typ` at+jwt, the algorithm of the JWK the `kid`
    /// names (never the token's own choice), the signature, then the claims. The
    /// `jku`, `x5u` and `jwk` headers are never read.
    fn verify_signed(&self, token: &str) -> Result<(Claims, String), Unverified> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| Unverified::Invalid("malformed"))?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(Unverified::Invalid("typ must be at+jwt"));
        }
        let kid = header.kid.ok_or(Unverified::Invalid("no kid"))?;
        let keys = self.shared.jwks.current();
        let Some(key) = keys.get(&kid) else {
            let revoked = self.shared.state.read().expect("state").check_key(&kid);
            return Err(if revoked.is_err() {
                Unverified::Revoked
            } else {
                Unverified::UnknownKey
            });
        };
        if header.alg != key.alg {
            return Err(Unverified::Invalid("alg does not match the key"));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    Unverified::Invalid("bad signature")
                }
                jsonwebtoken::errors::ErrorKind::Json(_) => {
                    Unverified::Invalid("claims missing or malformed")
                }
                _ => Unverified::Invalid("malformed"),
            })?
            .claims;
        let s = &self.shared.settings;
        claims::check(&claims, &s.issuer, &s.audience, unix_now()).map_err(Unverified::Claims)?;
        Ok((claims, kid))
    }

    /// A tower layer that verifies every request (and [`VerifyLayer::require_role`]...).
    pub fn layer(&self) -> VerifyLayer {
        VerifyLayer::new(self.clone())
    }
}

/// Why signature verification failed, before it becomes a [`Rejection`].
enum Unverified {
    UnknownKey,
    Revoked,
    Invalid(&'static str),
    Claims(Rejection),
}

impl Unverified {
    fn rejection(self) -> Rejection {
        match self {
            Self::UnknownKey => Rejection::Invalid("unknown key"),
            Self::Revoked => Rejection::KeyRevoked,
            Self::Invalid(why) => Rejection::Invalid(why),
            Self::Claims(r) => r,
        }
    }
}

#[doc(hidden)]
/// Benchmarks and tests: a verifier over a fixed JWKS, with no issuer behind it and a
/// feed that counts as live; its state changes only through `apply`.
pub mod testing {
    use super::*;

    /// Everything [`Verifier::verify_offline`] does except checking the signature
    /// (header, key lookup, claims parse and checks, freshness, staleness): what the
    /// verifier adds to a bare signature check, measured on its own. Never for
    /// anything but measuring.
    pub fn without_signature(v: &Verifier, token: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        let Some(kid) = header.kid.filter(|_| typ_ok) else {
            return false;
        };
        let keys = v.shared.jwks.current();
        if keys.get(&kid).is_none_or(|k| k.alg != header.alg) {
            return false;
        }
        let Ok(claims) = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token) else {
            return false;
        };
        let s = &v.shared.settings;
        claims::check(&claims, &s.issuer, &s.audience, unix_now()).is_ok()
            && v.check_fresh(&claims, &kid).is_ok()
            && !v.stale()
    }

    pub fn offline(settings: Settings, jwks: &serde_json::Value, ttl: i64) -> Verifier {
        let http = reqwest::Client::new();
        let shared = Arc::new(Shared {
            state: RwLock::new(state::Freshness::new(ttl, 0)),
            introspections: introspect::Cache::default(),
            endpoints: Endpoints {
                token: String::new(),
                events: String::new(),
                introspection: None,
                ttl,
            },
            jwks: jwks::Jwks::new(String::new(), http.clone(), Duration::from_secs(10)),
            http,
            settings,
            connected: AtomicBool::new(true),
            synced: tokio::sync::watch::channel(true).0,
            alive: Mutex::new(Some(Instant::now())),
            last_id: Mutex::new(None),
            connections: AtomicU64::new(0),
            keys_changed: tokio::sync::Notify::new(),
        });
        shared.jwks.set(jwks::KeySet::parse(jwks));
        Verifier {
            shared,
            _tasks: Arc::new(Tasks(Vec::new())),
        }
    }

    /// Applies one feed event (its JSON), as the follower would.
    pub fn apply(v: &Verifier, event: &serde_json::Value) {
        let e: tessera_proto::SecurityEvent =
            serde_json::from_value(event.clone()).expect("an event");
        v.shared.state.write().expect("state").apply(&e);
    }

    /// Keeps the feed counted as live.
    pub fn touch(v: &Verifier) {
        *v.shared.alive.lock().expect("alive") = Some(Instant::now());
    }
}
