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
pub use keyset::{KeyRing, KeySet, VerifyError};
pub use signing::{Generated, SigningKey, generate};

use crate::store::keys::{KeyRow, Stamp};
use crate::store::{self, Exec, StoreError};

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

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("TESSERA_KEK: {0}")]
    BadEnvKek(String),
    #[error("key-encryption key file {path}: {problem}")]
    BadKekFile { path: String, problem: String },
    #[error(
        "no key-encryption key: {path} does not exist and TESSERA_KEK is unset, but the database \
         already holds encrypted signing keys; restore the KEK from backup (tessera never makes new keys silently)"
    )]
    MissingKek { path: String },
    #[error(
        "the key-encryption key does not match this database (wrong TESSERA_KEK or keys/kek file)"
    )]
    WrongKek,
    #[error(
        "key-encryption key file {path} is accessible to other users (mode {mode:o}); \
         fix it with: chmod 600 {path}"
    )]
    KekFileOpen { path: String, mode: u32 },
    #[error("signing key {kid}: {problem}")]
    CorruptKey { kid: String, problem: String },
    #[error("no active signing key in the database")]
    NoActiveKey,
    #[error("cannot generate a {0} key")]
    Generate(&'static str),
    #[error("no next key to activate")]
    NoNextKey,
    #[error(
        "next key {kid} has been published only since {since}; it may sign from {from} \
         (verifiers cache the JWKS for jwks_max_age). Retry then, or use --revoke-current in an emergency"
    )]
    TooEarly {
        kid: String,
        since: String,
        from: String,
    },
    #[error(
        "the database's signing keys were re-encrypted under another key-encryption key \
         (keys rewrap) after this process started; refusing to seal a new key with the old one. \
         Restart every instance with the new KEK, then rotate"
    )]
    KekReplaced,
}
