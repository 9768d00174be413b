//! The key set of one load: the signing key, the verifiers and the published JWKS,
//! and the ring that swaps it when the database changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

use super::jwk::{Jwk, Jwks};
use super::kek::Kek;
use super::signing::{Generated, SigningKey, generate};
use super::{KeyError, KeyPurpose, KeyState};
use crate::config::{Config, SigningAlg};
use crate::store::{self, Db, StoreError, keys::KeyRow};

/// Claims with an expiry, which [`KeySet::verify`] compares with the server's clock.
pub trait Expiring {
    /// Expiry, Unix seconds.
    fn exp(&self) -> i64;
}

/// Seconds a token is still accepted past its `exp`, for clocks a little apart.
const LEEWAY: i64 = 5;

/// Whether a token that expires at `exp` is refused at `now` (Unix seconds): only once
/// `now` is more than [`LEEWAY`] past it (as the JWT library counted it).
fn expired(exp: i64, now: i64) -> bool {
    exp < now - LEEWAY
}

/// The keys as of one load: the signer, the verifiers and the serialised JWKS.
pub struct KeySet {
    /// The one key that signs new tokens.
    pub active: SigningKey,
    /// The active key of the RS256 ID-token chain, when there is one.
    id_rs256: Option<SigningKey>,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    /// The JWKS document, serialised once per load and served as is.
    pub jwks: bytes::Bytes,
    /// How many keys the JWKS holds.
    pub published: usize,
    /// kid:state of every row, to tell whether a reload changed anything.
    fingerprint: String,
}

/// A verified ID token hint: whom it names and which clients it was issued to.
pub struct IdTokenHint {
    /// The user.
    pub sub: String,
    /// The clients (`aud`).
    pub aud: Vec<String>,
}

/// Why [`KeySet::verify`] rejected a token.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a JWS with a readable header.
    #[error("malformed token")]
    Malformed,
    /// No `kid`, or a `kid` not published (never ours, deleted, or revoked).
    #[error("unknown or withdrawn key")]
    UnknownKey,
    /// Wrong `typ` or `alg`, a bad signature, a wrong issuer, expired, or a missing
    /// claim; the text says which (callers answer a fixed message instead).
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl KeySet {
    /// Verifies an access token signed by one of the published keys (RFC 8725 checks:
    /// `typ`, `alg` pinned to the key, `iss`, `exp` against `now`: the server's clock,
    /// not the system's that the JWT library would read).
    pub fn verify<T: DeserializeOwned + Expiring>(
        &self,
        token: &str,
        issuer: &str,
        now: i64,
    ) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(VerifyError::Invalid("typ must be at+jwt".into()));
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let (alg, key) = self.verifiers.get(kid).ok_or(VerifyError::UnknownKey)?;
        if header.alg != *alg {
            return Err(VerifyError::Invalid("alg does not match the key".into()));
        }
        let mut validation = Validation::new(*alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        if expired(claims.exp(), now) {
            return Err(VerifyError::Invalid("ExpiredSignature".into()));
        }
        Ok(claims)
    }

    /// The `sub` and `aud` of an ID token this instance signed for issuer `issuer`, given
    /// back as an RP-initiated logout's `id_token_hint`: signature, `alg` and `iss` checked;
    /// `exp` not (the hint may be an expired ID token, OpenID Connect RP-Initiated
    /// Logout 1.0 §2). `None` for anything else.
    pub fn id_token_hint(&self, token: &str, issuer: &str) -> Option<IdTokenHint> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Aud {
            One(String),
            Many(Vec<String>),
        }
        #[derive(serde::Deserialize)]
        struct Hint {
            sub: String,
            aud: Aud,
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
        {
            return None;
        }
        let (alg, key) = self.verifiers.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        let mut validation = Validation::new(*alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "sub"]);
        let hint = jsonwebtoken::decode::<Hint>(token, key, &validation).ok()?;
        let aud = match hint.claims.aud {
            Aud::One(a) => vec![a],
            Aud::Many(a) => a,
        };
        Some(IdTokenHint {
            sub: hint.claims.sub,
            aud,
        })
    }

    /// The key that signs an ID token for a client registered for `alg` (`None`: the
    /// deployment's): RS256 needs an RS256 key, from the main chain or the RS256 chain;
    /// any other alg is the main key's (registration allows no other). `None` when RS256
    /// is wanted and no key signs it yet.
    pub fn id_token_signer(&self, alg: Option<SigningAlg>) -> Option<&SigningKey> {
        match alg {
            Some(SigningAlg::RS256) if self.active.alg != SigningAlg::RS256 => {
                self.id_rs256.as_ref()
            }
            _ => Some(&self.active),
        }
    }

    /// The `kid` of a token's header (no verification: for a token verified before).
    pub fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).ok()?.kid
    }

    /// Whether tokens signed by `kid` still verify: the key is published and not
    /// revoked. A stream checks this after a key event instead of verifying its
    /// token's signature again.
    pub fn accepts(&self, kid: &str) -> bool {
        self.verifiers.contains_key(kid)
    }
}

/// The process's view of the signing keys, reloaded when the database changes.
pub struct KeyRing {
    pub(super) kek: Kek,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// A key for `purpose`, derived from the KEK (HMAC-SHA-256 of the label): the
    /// same on every instance, never the KEK itself.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        self.kek.derive(purpose)
    }

    /// Seals a secret that is not a signing key (a TOTP seed) under the KEK, bound to
    /// `label` (`factor:<id>`, never a kid); KEK rotation re-seals it.
    pub fn seal_secret(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        self.kek.seal(label, plaintext)
    }

    /// Opens what [`KeyRing::seal_secret`] sealed with the same `label`.
    pub fn open_secret(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.kek.open(label, sealed)
    }

    /// Loads the KEK, creates the first active and next keys if the database has
    /// none, and loads the key set. Fails rather than start with a half-loaded set.
    pub async fn init(cfg: &Config, db: &Db, now: i64) -> Result<Self, KeyError> {
        let kek = Kek::load(cfg, db).await?;
        if store::keys::count(&db.read).await? == 0 {
            let first = new_key_row(&kek, cfg.signing_alg, KeyState::Active, now)?;
            let next = new_key_row(&kek, cfg.signing_alg, KeyState::Next, now)?;
            let mut tx = db.begin().await?;
            // Another process may have won the race to create the first keys.
            if store::keys::count(&mut tx).await? == 0 {
                store::keys::insert(&mut tx, &first).await?;
                store::keys::insert(&mut tx, &next).await?;
            }
            tx.commit().await.map_err(StoreError::from)?;
        }
        let set = load_set(&kek, &store::keys::list(&db.read).await?)?;
        Ok(Self {
            kek,
            current: RwLock::new(Arc::new(set)),
        })
    }

    /// The key set of the latest load; a caller keeps it for one request.
    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().expect("key set lock").clone()
    }

    /// Re-reads the keys; swaps the set only when a key changed state. Returns whether it did.
    pub async fn reload(&self, db: &Db) -> Result<bool, KeyError> {
        let rows = store::keys::list(&db.read).await?;
        if fingerprint(&rows) == self.current().fingerprint {
            return Ok(false);
        }
        let set = load_set(&self.kek, &rows)?;
        *self.current.write().expect("key set lock") = Arc::new(set);
        Ok(true)
    }
}

/// Generates a key and seals its private half, ready to insert.
fn new_key_row(kek: &Kek, alg: SigningAlg, state: KeyState, now: i64) -> Result<KeyRow, KeyError> {
    Ok(sealed_row(
        kek,
        alg,
        generate(alg)?,
        state,
        KeyPurpose::Main,
        now,
    ))
}

/// The row of a generated key in `state`, its private half sealed under `kek`.
pub(super) fn sealed_row(
    kek: &Kek,
    alg: SigningAlg,
    generated: Generated,
    state: KeyState,
    purpose: KeyPurpose,
    now: i64,
) -> KeyRow {
    let (kid, pkcs8, jwk) = generated;
    KeyRow {
        private_sealed: kek.seal(&kid, &pkcs8),
        kid,
        alg: alg.as_str().into(),
        state: state.as_str().into(),
        public_jwk: serde_json::to_string(&jwk).expect("a JWK serialises"),
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
        revoked_at: None,
        purpose: purpose.as_str().into(),
    }
}

fn fingerprint(rows: &[KeyRow]) -> String {
    rows.iter()
        .map(|r| format!("{}:{};", r.kid, r.state))
        .collect()
}

fn load_set(kek: &Kek, rows: &[KeyRow]) -> Result<KeySet, KeyError> {
    let mut active = None;
    let mut id_rs256 = None;
    let mut verifiers = HashMap::new();
    let mut published = Vec::new();
    for row in rows {
        let state = KeyState::of(row)?;
        let purpose = KeyPurpose::of(row)?;
        if state == KeyState::Revoked {
            continue;
        }
        let corrupt = |problem: &str| KeyError::CorruptKey {
            kid: row.kid.clone(),
            problem: problem.into(),
        };
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| corrupt("unknown algorithm"))?;
        let value: serde_json::Value =
            serde_json::from_str(&row.public_jwk).map_err(|_| corrupt("public JWK is not JSON"))?;
        let jwt_alg = match alg {
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
            SigningAlg::RS256 => Algorithm::RS256,
        };
        let decoding = tessera_jose::public_key(jwt_alg, &value)
            .map_err(|_| corrupt("public JWK is malformed"))?;
        let jwk: Jwk =
            serde_json::from_value(value).map_err(|_| corrupt("public JWK is malformed"))?;
        jwk.members()
            .map_err(|_| corrupt("public JWK is malformed"))?;
        match state {
            KeyState::Active => {
                let pkcs8 = kek.open(&row.kid, &row.private_sealed)?;
                let key = SigningKey::from_pkcs8(&row.kid, alg, &pkcs8)?;
                if key.public_members().thumbprint() != row.kid {
                    return Err(corrupt("private key does not match its kid"));
                }
                match purpose {
                    KeyPurpose::Main => active = Some(key),
                    KeyPurpose::IdRs256 if alg == SigningAlg::RS256 => id_rs256 = Some(key),
                    KeyPurpose::IdRs256 => return Err(corrupt("an id_rs256 key must be RS256")),
                }
            }
            KeyState::Retired => {
                // A retired key never signs again: one whose private half does not open
                // (sealed under a KEK since replaced) must not stop the start. Its public
                // half stays published for the tokens it signed.
                if let Err(e) = kek.open(&row.kid, &row.private_sealed) {
                    tracing::warn!(kid = %row.kid, "retired signing key left without its private half: {e}");
                }
            }
            // The next key will sign: it must open now, not at the rotation.
            KeyState::Next => {
                kek.open(&row.kid, &row.private_sealed)?;
            }
            KeyState::Revoked => unreachable!("revoked keys are skipped above"),
        }
        verifiers.insert(row.kid.clone(), (jwt_alg, decoding));
        published.push(jwk);
    }
    let active = active.ok_or(KeyError::NoActiveKey)?;
    let jwks = serde_json::to_vec(&Jwks { keys: &published }).expect("a JWKS serialises");
    Ok(KeySet {
        active,
        id_rs256,
        published: verifiers.len(),
        verifiers,
        jwks: bytes::Bytes::from(jwks),
        fingerprint: fingerprint(rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_is_accepted_until_the_leeway_past_its_exp() {
        let exp = 1_000_000;
        assert!(!expired(exp, exp));
        assert!(!expired(exp, exp + LEEWAY));
        assert!(expired(exp, exp + LEEWAY + 1));
    }
}
