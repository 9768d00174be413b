//! Signing keys: generation, storage under the key-encryption key, the published
//! key set (JWKS) and signing/verification of access tokens.
//!
//! States: `next` (published, not signing) → `active` (signing) → `retired`
//! (published until its last token expired) → deleted; or `revoked` (withdrawn at once).
//!
//! - [`kek`]: the key-encryption key that seals every private key;
//! - [`signing`]: JWS signing with ring, key generation;
//! - [`jwk`]: typed public JWKs and RFC 7638 thumbprints;
//! - [`keyset`]: loading the rows into signer, verifiers and JWKS;
//! - [`rotation`]: when keys change state (scheduled and manual rotation);
//! - [`rewrap`]: re-encryption under a new KEK.

pub mod jwk;
pub mod kek;
pub mod keyset;
mod rewrap;
mod rotation;
pub mod signing;

pub use jwk::{Jwk, PublicMembers};
pub use kek::Kek;
pub use keyset::{Expiring, IdTokenHint, KeyRing, KeySet, VerifyError};
pub use signing::{Generated, SigningKey, generate};

use std::sync::Arc;

use crate::config::Config;
use crate::domain::clock::Clock;
use crate::domain::events::EventBus;
use crate::store::keys::{KeyRow, Stamp};
use crate::store::{self, Db, Exec, StoreError};

/// The signing keys and their life: scheduled and manual rotation, reload, the RS256
/// chain, KEK rotation. Only `serve` and `tessera keys …` build it (it loads, or on a
/// fresh database creates, the KEK and the first keys); cheap to clone.
#[derive(Clone)]
pub struct Keys {
    /// The settings (rotation interval, signing alg, lifetimes).
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The server's clock.
    pub clock: Arc<Clock>,
    /// Woken after a rotation commits; inert in a command.
    pub events: Arc<EventBus>,
    /// The key set in memory, shared with whoever signs and verifies.
    pub keys: Arc<KeyRing>,
}

impl Keys {
    /// Connects, migrates and loads (or creates) the KEK and the signing keys, for a
    /// command that manages keys and needs nothing else.
    pub async fn open(cfg: Config) -> Result<Self, crate::domain::StartError> {
        crate::crypto::install_jwt_provider();
        let db = crate::domain::database(&cfg).await?;
        let clock = Arc::new(Clock::default());
        let keys = Arc::new(KeyRing::init(&cfg, &db, clock.now()).await?);
        Ok(Self {
            cfg: Arc::new(cfg),
            db,
            clock,
            events: Arc::default(),
            keys,
        })
    }
}

/// Where a signing key is in its life. Stored as its [`as_str`](Self::as_str) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signs new tokens; exactly one key is active.
    Active,
    /// No longer signs; published until its last token has expired.
    Retired,
    /// Withdrawn at once: neither signs nor is published.
    Revoked,
}

impl KeyState {
    /// The name stored in `signing_keys.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }

    /// The state named `s` in `signing_keys.state`; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Next, Self::Active, Self::Retired, Self::Revoked]
            .into_iter()
            .find(|state| state.as_str() == s)
    }

    /// The state of a stored key; an unknown name is a corrupt row.
    pub fn of(row: &KeyRow) -> Result<Self, KeyError> {
        Self::parse(&row.state).ok_or_else(|| KeyError::CorruptKey {
            kid: row.kid.clone(),
            problem: format!("unknown state `{}`", row.state),
        })
    }
}

/// The chain a key belongs to. Each chain rotates by the same rules and has at most
/// one active key. Stored as its [`as_str`](Self::as_str) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Signs access tokens, and ID tokens in the deployment's alg.
    Main,
    /// RS256, for the ID tokens of clients registered for RS256 (OpenID Connect Core
    /// §15.1: every OP supports it) when the main chain signs another alg. Created when
    /// the first such client needs it.
    IdRs256,
}

impl KeyPurpose {
    /// The name stored in `signing_keys.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::IdRs256 => "id_rs256",
        }
    }

    /// The purpose of a stored key; an unknown name is a corrupt row.
    pub fn of(row: &KeyRow) -> Result<Self, KeyError> {
        [Self::Main, Self::IdRs256]
            .into_iter()
            .find(|p| p.as_str() == row.purpose)
            .ok_or_else(|| KeyError::CorruptKey {
                kid: row.kid.clone(),
                problem: format!("unknown purpose `{}`", row.purpose),
            })
    }
}

/// Moves a stored key from `from` to `to`; false when it was not in `from`.
async fn transition(
    db: impl Into<Exec<'_>>,
    kid: &str,
    from: KeyState,
    to: KeyState,
    now: i64,
) -> Result<bool, KeyError> {
    let stamp = match to {
        KeyState::Active => Stamp::Activated,
        KeyState::Retired => Stamp::Retired,
        KeyState::Revoked => Stamp::Revoked,
        KeyState::Next => return Err(StoreError::Corrupt("no transition to `next`".into()).into()),
    };
    let done = store::keys::transition(db, kid, from.as_str(), to.as_str(), stamp, now).await?;
    Ok(done)
}

/// Whether a stored key is in `state`.
fn in_state(row: &KeyRow, state: KeyState) -> bool {
    row.state == state.as_str()
}

/// Whether a stored key belongs to the chain `purpose`.
fn of_chain(row: &KeyRow, purpose: KeyPurpose) -> bool {
    row.purpose == purpose.as_str()
}

/// Why loading, rotating or re-encrypting the signing keys failed. The messages are
/// for the operator (the start, the CLI, the admin API): they name what to fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key rows could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `TESSERA_KEK` is not base64 of 32 bytes; the text says how.
    #[error("TESSERA_KEK: {0}")]
    BadEnvKek(String),
    /// The KEK file cannot be read, written or decoded (also a bad new KEK for
    /// `keys rewrap`).
    #[error("key-encryption key file {path}: {problem}")]
    BadKekFile {
        /// The file (or `new KEK`).
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database holds sealed keys but no KEK was given: refusing to make a new
    /// one, which would orphan them.
    #[error(
        "no key-encryption key: {path} does not exist and TESSERA_KEK is unset, but the database \
         already holds encrypted signing keys; restore the KEK from backup (tessera never makes new keys silently)"
    )]
    MissingKek {
        /// Where the KEK file was looked for.
        path: String,
    },
    /// The KEK does not open the database's check value: it belongs to another
    /// database, or the keys were rewrapped.
    #[error(
        "the key-encryption key does not match this database (wrong TESSERA_KEK or keys/kek file)"
    )]
    WrongKek,
    /// Users other than the owner and its group may access the KEK file: the start
    /// stops (group access is only warned of).
    #[error(
        "key-encryption key file {path} is accessible to other users (mode {mode:o}); \
         fix it with: chmod 600 {path}"
    )]
    KekFileOpen {
        /// The KEK file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A stored key does not load: unknown state or algorithm, a malformed JWK, a
    /// private half that does not decrypt or does not match its kid.
    #[error("signing key {kid}: {problem}")]
    CorruptKey {
        /// The key concerned.
        kid: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No key is `active`. At load the database is broken; a scheduled rotation
    /// ignores it (another instance got there first).
    #[error("no active signing key in the database")]
    NoActiveKey,
    /// Key generation failed for the named algorithm.
    #[error("cannot generate a {0} key")]
    Generate(&'static str),
    /// A rotation found no `next` key to promote.
    #[error("no next key to activate")]
    NoNextKey,
    /// The `next` key has not been published for `jwks_max_age` yet, so verifiers
    /// may not know it: the rotation waits (unless it revokes the current key).
    #[error(
        "next key {kid} has been published only since {since}; it may sign from {from} \
         (verifiers cache the JWKS for jwks_max_age). Retry then, or use --revoke-current in an emergency"
    )]
    TooEarly {
        /// The next key.
        kid: String,
        /// When it was published, RFC 3339.
        since: String,
        /// When it may sign, RFC 3339.
        from: String,
    },
    /// Another process rewrapped the keys under a new KEK since this one started;
    /// sealing a new key with the old KEK would break every restarted instance.
    #[error(
        "the database's signing keys were re-encrypted under another key-encryption key \
         (keys rewrap) after this process started; refusing to seal a new key with the old one. \
         Restart every instance with the new KEK, then rotate"
    )]
    KekReplaced,
}
