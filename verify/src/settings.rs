//! What a [`crate::Verifier`] is told: the issuer, its own client, and the staleness policy.

use std::time::Duration;

/// What to do with a token when the feed has been out of reach for longer than
/// `max_staleness` (or has not caught up yet after a start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalePolicy {
    /// 401 "authorization state unknown". The default: the verifier's promise is
    /// that a revoked token is refused within a second; past the budget it cannot
    /// keep it, and failing closed is the only answer that never lets a revoked
    /// session or a removed role through.
    #[default]
    Refuse,
    /// Ask the issuer's `/introspect` (answers cached per token for `introspect_cache`);
    /// refuse when that fails too. The client needs capability `introspect`.
    Introspect,
    /// Accept what verifies offline, with what the feed said before it went away:
    /// a change made during the outage is missed until the token expires.
    Accept,
}

/// How to reach and trust the issuer. [`Settings::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Exactly the tokens' `iss` (and the metadata's `issuer`).
    pub issuer: String,
    /// This resource server: the `aud` a token must include.
    pub audience: String,
    /// A confidential client with capability `events` (and `introspect` for that policy).
    pub client_id: String,
    /// The client's secret, for the event stream and introspection.
    pub client_secret: String,
    /// How long the verifier may go without hearing from the feed before `policy` applies.
    pub max_staleness: Duration,
    /// What to do while the feed is stale: refuse, or ask introspection.
    pub policy: StalePolicy,
    /// How long an introspection answer is reused for the same token.
    pub introspect_cache: Duration,
    /// At most one JWKS refetch per this interval because of an unknown `kid`.
    pub unknown_kid_interval: Duration,
    /// The `realm` of `WWW-Authenticate` answers (default: the audience).
    pub realm: String,
    /// Override of the metadata's `tessera_events_endpoint` (a proxy in between, tests).
    pub events_endpoint: Option<String>,
}

impl Settings {
    /// Settings with the defaults: 30 s staleness, refuse when stale, 5 s introspection cache,
    /// 10 s unknown-`kid` interval, realm = audience.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let audience = audience.into();
        Self {
            issuer: issuer.into(),
            realm: audience.clone(),
            audience,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            max_staleness: Duration::from_secs(30),
            policy: StalePolicy::Refuse,
            introspect_cache: Duration::from_secs(5),
            unknown_kid_interval: Duration::from_secs(10),
            events_endpoint: None,
        }
    }
}

/// Why a verifier could not start.
#[derive(Debug)]
pub enum StartError {
    /// The metadata could not be fetched or read.
    Metadata(String),
    /// The metadata's `issuer` is not the configured one (RFC 8414 §3.3).
    IssuerMismatch {
        /// The issuer the settings name.
        configured: String,
        /// The issuer the metadata names.
        published: String,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Metadata(e) => write!(f, "cannot read the issuer's metadata: {e}"),
            Self::IssuerMismatch {
                configured,
                published,
            } => write!(
                f,
                "the metadata names issuer {published:?}, not the configured {configured:?}"
            ),
        }
    }
}

impl std::error::Error for StartError {}
