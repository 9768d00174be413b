//! Signing keys: generation, storage under the key-encryption key, the published
//! key set (JWKS) and signing/verification of access tokens.
//!
//! States: `next` (published, not signing) → `active` (signing) → `retired`
//! (published until its last token expired) → deleted; or `revoked` (withdrawn at once).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::{Config, SigningAlg};
use crate::crypto::{self, AEAD_KEY_LEN, b64, sha256};
use crate::store::{self, Db, StoreError, keys::KeyRow};

const KEK_FILE: &str = "kek";
const KEK_CHECK: &str = "kek_check";

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

/// The key-encryption key. Never printed.
pub struct Kek([u8; AEAD_KEY_LEN]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    fn decode(text: &str) -> Result<[u8; AEAD_KEY_LEN], String> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "not valid base64".to_string())?;
        bytes.as_slice().try_into().map_err(|_| {
            format!(
                "expected {AEAD_KEY_LEN} bytes (base64), got {} bytes",
                bytes.len()
            )
        })
    }

    /// Takes the KEK from `TESSERA_KEK` or `keys_dir/kek`; generates the file (mode 0600)
    /// only when the database holds nothing encrypted yet. Checks it against the database.
    pub async fn load(cfg: &Config, db: &Db) -> Result<Self, KeyError> {
        let check = store::keys::meta(&db.read, KEK_CHECK).await?;
        let path = cfg.keys_dir.join(KEK_FILE);
        let kek = if let Some(text) = &cfg.kek {
            Kek(Self::decode(text).map_err(KeyError::BadEnvKek)?)
        } else if path.exists() {
            check_kek_file_mode(&path)?;
            let text = std::fs::read_to_string(&path).map_err(|e| KeyError::BadKekFile {
                path: path.display().to_string(),
                problem: e.to_string(),
            })?;
            Kek(Self::decode(&text).map_err(|problem| KeyError::BadKekFile {
                path: path.display().to_string(),
                problem,
            })?)
        } else if check.is_some() {
            return Err(KeyError::MissingKek {
                path: path.display().to_string(),
            });
        } else {
            let kek = Kek(crypto::random());
            write_private_file(&path, STANDARD.encode(kek.0).as_bytes()).map_err(|e| {
                KeyError::BadKekFile {
                    path: path.display().to_string(),
                    problem: e.to_string(),
                }
            })?;
            tracing::info!(path = %path.display(), "generated a new key-encryption key; back it up");
            kek
        };
        match check {
            Some(sealed) => {
                if !kek.opens_check(&sealed) {
                    return Err(KeyError::WrongKek);
                }
            }
            None => {
                let mut tx = db.begin().await?;
                store::keys::set_meta(
                    &mut tx,
                    KEK_CHECK,
                    &crypto::seal(&kek.0, KEK_CHECK.as_bytes(), b"tessera"),
                )
                .await?;
                tx.commit().await.map_err(StoreError::from)?;
            }
        }
        Ok(kek)
    }

    /// Whether the database's check value was sealed with this KEK.
    fn opens_check(&self, sealed: &[u8]) -> bool {
        crypto::open(&self.0, KEK_CHECK.as_bytes(), sealed).is_ok()
    }

    fn seal(&self, kid: &str, plaintext: &[u8]) -> Vec<u8> {
        crypto::seal(&self.0, kid.as_bytes(), plaintext)
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        crypto::open(&self.0, kid.as_bytes(), sealed).map_err(|_| KeyError::CorruptKey {
            kid: kid.into(),
            problem: "private key does not decrypt".into(),
        })
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The KEK opens every private key: a file others may read stops the start (with
/// the command that fixes it); group access, as secret mounts often grant, is warned of.
fn check_kek_file_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(KeyError::KekFileOpen {
            path: path.display().to_string(),
            mode: mode & 0o777,
        });
    }
    if mode & 0o070 != 0 {
        tracing::warn!(path = %path.display(), "the key-encryption key is accessible to its group; chmod 600 it");
    }
    Ok(())
}

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A key that signs: its pre-encoded JWS header and the ring key pair.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    header_b64: String,
    /// The same header with `typ: JWT`, for OpenID Connect ID tokens.
    id_header_b64: String,
    signer: Signer,
    rng: SystemRandom,
}

impl SigningKey {
    pub fn from_pkcs8(kid: &str, alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let bad = |e: ring::error::KeyRejected| KeyError::CorruptKey {
            kid: kid.into(),
            problem: e.to_string(),
        };
        let signer = match alg {
            SigningAlg::ES256 => Signer::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
                    .map_err(bad)?,
            ),
            SigningAlg::EdDSA => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(bad)?)
            }
            SigningAlg::RS256 => Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?),
        };
        let header = json!({"alg": alg.as_str(), "kid": kid, "typ": "at+jwt"});
        let id_header = json!({"alg": alg.as_str(), "kid": kid, "typ": "JWT"});
        Ok(Self {
            kid: kid.into(),
            alg,
            header_b64: b64(header.to_string().as_bytes()),
            id_header_b64: b64(id_header.to_string().as_bytes()),
            signer,
            rng,
        })
    }

    /// The public JWK (without `kid`, `use`, `alg`) of this key.
    fn public_members(&self) -> serde_json::Value {
        match &self.signer {
            Signer::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Signer::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
            Signer::Rsa(k) => {
                let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public());
                let strip = |v: &[u8]| b64(&v[v.iter().take_while(|b| **b == 0).count()..]);
                json!({"kty": "RSA", "n": strip(&c.n), "e": strip(&c.e)})
            }
        }
    }

    /// Signs access-token `claims` as a compact JWS (`typ: at+jwt`, RFC 9068).
    pub fn sign(&self, claims: &impl Serialize) -> String {
        self.sign_with(&self.header_b64, claims)
    }

    /// Signs ID-token `claims` (`typ: JWT`, OpenID Connect Core §2).
    pub fn sign_id_token(&self, claims: &impl Serialize) -> String {
        self.sign_with(&self.id_header_b64, claims)
    }

    fn sign_with(&self, header_b64: &str, claims: &impl Serialize) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 400);
        out.push_str(header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let signature = match &self.signer {
            Signer::Ecdsa(k) => k
                .sign(&self.rng, out.as_bytes())
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Signer::Ed25519(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
                    .expect("RSA signing");
                sig
            }
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut out);
        out
    }
}

/// Generates a key pair: PKCS#8 DER and its RFC 7638 thumbprint as `kid`.
/// A generated key: its kid, PKCS#8 DER and public JWK.
pub type Generated = (String, Vec<u8>, serde_json::Value);

pub fn generate(alg: SigningAlg) -> Result<Generated, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = match alg {
        SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate("ES256"))?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Generate("EdDSA"))?
            .as_ref()
            .to_vec(),
        // ring cannot generate RSA keys; the `rsa` crate does only that, ring signs.
        SigningAlg::RS256 => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
                .map_err(|_| KeyError::Generate("RS256"))?;
            key.to_pkcs8_der()
                .map_err(|_| KeyError::Generate("RS256"))?
                .as_bytes()
                .to_vec()
        }
    };
    let key = SigningKey::from_pkcs8("pending", alg, &pkcs8)?;
    let members = key.public_members();
    let kid = thumbprint(&members);
    let mut jwk = members;
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk["alg"] = json!(alg.as_str());
    Ok((kid, pkcs8, jwk))
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(m: &serde_json::Value) -> String {
    let canonical = match m["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s(&m["crv"]),
            s(&m["x"]),
            s(&m["y"])
        ),
        Some("OKP") => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            s(&m["crv"]),
            s(&m["x"])
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            s(&m["e"]),
            s(&m["n"])
        ),
    };
    b64(&sha256(canonical.as_bytes()))
}

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The keys as of one load: the signer, the verifiers and the serialised JWKS.
pub struct KeySet {
    pub active: SigningKey,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    pub jwks: bytes::Bytes,
    /// How many keys the JWKS holds.
    pub published: usize,
    /// kid:state of every row, to tell whether a reload changed anything.
    fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown or withdrawn key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl KeySet {
    /// Verifies an access token signed by one of the published keys (RFC 8725 checks:
    /// `typ`, `alg` pinned to the key, `iss`, `exp`).
    pub fn verify<T: DeserializeOwned>(&self, token: &str, issuer: &str) -> Result<T, VerifyError> {
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
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}

/// The process's view of the signing keys, reloaded when the database changes.
pub struct KeyRing {
    kek: Kek,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Loads the KEK, creates the first active and next keys if the database has
    /// none, and loads the key set. Fails rather than start with a half-loaded set.
    pub async fn init(cfg: &Config, db: &Db, now: i64) -> Result<Self, KeyError> {
        let kek = Kek::load(cfg, db).await?;
        if store::keys::count(&db.read).await? == 0 {
            let first = new_key_row(&kek, cfg.signing_alg, "active", now)?;
            let next = new_key_row(&kek, cfg.signing_alg, "next", now)?;
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
fn new_key_row(kek: &Kek, alg: SigningAlg, state: &str, now: i64) -> Result<KeyRow, KeyError> {
    Ok(sealed_row(kek, alg, generate(alg)?, state, now))
}

fn sealed_row(kek: &Kek, alg: SigningAlg, generated: Generated, state: &str, now: i64) -> KeyRow {
    let (kid, pkcs8, jwk) = generated;
    KeyRow {
        private_sealed: kek.seal(&kid, &pkcs8),
        kid,
        alg: alg.as_str().into(),
        state: state.into(),
        public_jwk: jwk.to_string(),
        created_at: now,
        activated_at: (state == "active").then_some(now),
        retired_at: None,
        revoked_at: None,
    }
}

fn fingerprint(rows: &[KeyRow]) -> String {
    rows.iter()
        .map(|r| format!("{}:{};", r.kid, r.state))
        .collect()
}

fn load_set(kek: &Kek, rows: &[KeyRow]) -> Result<KeySet, KeyError> {
    let mut active = None;
    let mut verifiers = HashMap::new();
    let mut published = Vec::new();
    for row in rows.iter().filter(|r| r.state != "revoked") {
        let corrupt = |problem: &str| KeyError::CorruptKey {
            kid: row.kid.clone(),
            problem: problem.into(),
        };
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| corrupt("unknown algorithm"))?;
        let jwk: serde_json::Value =
            serde_json::from_str(&row.public_jwk).map_err(|_| corrupt("public JWK is not JSON"))?;
        let jwt_alg = match alg {
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
            SigningAlg::RS256 => Algorithm::RS256,
        };
        let decoding = tessera_jose::public_key(jwt_alg, &jwk)
            .map_err(|_| corrupt("public JWK is malformed"))?;
        if row.state == "active" {
            let pkcs8 = kek.open(&row.kid, &row.private_sealed)?;
            let key = SigningKey::from_pkcs8(&row.kid, alg, &pkcs8)?;
            if thumbprint(&key.public_members()) != row.kid {
                return Err(corrupt("private key does not match its kid"));
            }
            active = Some(key);
        } else if row.state == "retired" {
            // A retired key never signs again: one whose private half does not open
            // (sealed under a KEK since replaced) must not stop the start. Its public
            // half stays published for the tokens it signed.
            if let Err(e) = kek.open(&row.kid, &row.private_sealed) {
                tracing::warn!(kid = %row.kid, "retired signing key left without its private half: {e}");
            }
        } else {
            // The next key will sign: it must open now, not at the rotation.
            kek.open(&row.kid, &row.private_sealed)?;
        }
        verifiers.insert(row.kid.clone(), (jwt_alg, decoding));
        published.push(jwk);
    }
    let active = active.ok_or(KeyError::NoActiveKey)?;
    let jwks = bytes::Bytes::from(json!({ "keys": published }).to_string());
    Ok(KeySet {
        active,
        published: verifiers.len(),
        verifiers,
        jwks,
        fingerprint: fingerprint(rows),
    })
}

impl super::Core {
    /// Runs every second on every instance: scheduled rotation, removal of retired
    /// keys whose tokens have all expired, and pick-up of changes made elsewhere.
    pub async fn maintain_keys(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let rows = store::keys::list(&self.db.read).await?;
        let interval = self.cfg.key_rotation_interval.as_secs() as i64;
        if rows.iter().any(|r| {
            r.state == "active" && r.activated_at.unwrap_or(r.created_at) + interval <= now
        }) {
            match self.rotate_keys(None, false).await {
                Ok(msg) => tracing::info!("scheduled rotation: {msg}"),
                // Another instance rotated first, or the next key is still too young.
                Err(KeyError::TooEarly { .. } | KeyError::NoActiveKey) => {}
                Err(e) => return Err(e),
            }
        }
        // A retired key stays published until the last token it signed has expired,
        // plus the JWKS cache lifetime and a leeway.
        let keep =
            (self.cfg.access_token_ttl + self.cfg.jwks_max_age).as_secs() as i64 + RETIRED_LEEWAY;
        if rows
            .iter()
            .any(|r| r.state == "retired" && r.retired_at.unwrap_or(0) < now - keep)
        {
            let mut tx = self.db.begin().await?;
            store::keys::delete_retired_before(&mut tx, now - keep).await?;
            tx.commit().await.map_err(StoreError::from)?;
        }
        self.reload_keys().await?;
        Ok(())
    }

    /// Re-reads the key rows (another process may have rotated) and logs a change.
    pub async fn reload_keys(&self) -> Result<bool, KeyError> {
        let changed = self.keys.reload(&self.db).await?;
        if changed {
            tracing::info!(kid = %self.keys.current().active.kid, "signing keys reloaded");
        }
        Ok(changed)
    }

    /// Rotates: the `next` key (already published) starts signing, the active key is
    /// retired (or revoked at once with `revoke_current`), and a new `next` key of
    /// `alg` (default: the configured one) is published. Safe across instances: the
    /// state transitions are conditional updates inside one write transaction.
    pub async fn rotate_keys(
        &self,
        alg: Option<SigningAlg>,
        revoke_current: bool,
    ) -> Result<String, KeyError> {
        let alg = alg.unwrap_or(self.cfg.signing_alg);
        let now = self.clock.now();
        // RSA generation takes a while: off the async threads, before taking the write lock.
        let generated = tokio::task::spawn_blocking(move || generate(alg))
            .await
            .map_err(|_| KeyError::Generate(alg.as_str()))??;
        let fresh = sealed_row(&self.keys.kek, alg, generated, "next", now);
        let mut tx = self.db.begin().await?;
        // A rewrap by another process must not be undone key by key: a key sealed
        // here under the old KEK would stop every instance that starts with the new one.
        let check = store::keys::meta(&mut tx, KEK_CHECK).await?;
        if !check.is_some_and(|sealed| self.keys.kek.opens_check(&sealed)) {
            return Err(KeyError::KekReplaced);
        }
        let rows = store::keys::list(&mut tx).await?;
        let active = rows
            .iter()
            .find(|r| r.state == "active")
            .ok_or(KeyError::NoActiveKey)?;
        let next = rows
            .iter()
            .find(|r| r.state == "next")
            .ok_or(KeyError::NoNextKey)?;
        // Invariant: a key signs only after it has been published as `next` for at
        // least the JWKS cache lifetime, so a verifier honouring Cache-Control has it.
        // Only an emergency revocation may break it.
        // Times are whole seconds: a key created at 10.9 s carries 10, so it may sign
        // from 10 + lead + 1, never earlier than a full `lead` after it was published.
        let lead = self.cfg.jwks_max_age.as_secs() as i64;
        let signs_from = next.created_at + lead + 1;
        if !revoke_current && now < signs_from {
            return Err(KeyError::TooEarly {
                kid: next.kid.clone(),
                since: crate::cli::rfc3339(Some(next.created_at)),
                from: crate::cli::rfc3339(Some(signs_from)),
            });
        }
        let (old_state, reason) = if revoke_current {
            ("revoked", "revoked")
        } else {
            ("retired", "rotated")
        };
        if !store::keys::transition(&mut tx, &active.kid, "active", old_state, now).await?
            || !store::keys::transition(&mut tx, &next.kid, "next", "active", now).await?
        {
            return Err(KeyError::NoActiveKey);
        }
        store::keys::insert(&mut tx, &fresh).await?;
        let event = store::events::NewEvent {
            kind: "keys.rotated",
            kid: Some(&active.kid),
            reason: Some(reason),
            ..Default::default()
        };
        store::events::append(&mut tx, &event, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.keys.reload(&self.db).await?;
        self.events.wake();
        Ok(format!(
            "{} is now active; {} {}; {} ({}) published as next",
            next.kid, active.kid, old_state, fresh.kid, fresh.alg
        ))
    }
}

impl super::Core {
    /// KEK rotation: re-encrypts every private key (and the check value) under
    /// `new_kek` (base64 of 32 bytes) in one transaction. Afterwards every process
    /// must be started with the new KEK. Returns the number of keys re-encrypted.
    pub async fn rewrap_keys(&self, new_kek: &str) -> Result<usize, KeyError> {
        let new = Kek(
            Kek::decode(new_kek).map_err(|problem| KeyError::BadKekFile {
                path: "new KEK".into(),
                problem,
            })?,
        );
        let mut tx = self.db.begin().await?;
        let rows = store::keys::list(&mut tx).await?;
        let mut rewrapped = 0;
        for r in &rows {
            let plain = match self.keys.kek.open(&r.kid, &r.private_sealed) {
                Ok(plain) => plain,
                // As at start: a retired key that does not open never signs again.
                Err(e) if r.state == "retired" => {
                    tracing::warn!(kid = %r.kid, "retired signing key not re-encrypted: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            store::keys::set_private(&mut tx, &r.kid, &new.seal(&r.kid, &plain)).await?;
            rewrapped += 1;
        }
        store::keys::set_meta(
            &mut tx,
            KEK_CHECK,
            &crypto::seal(&new.0, KEK_CHECK.as_bytes(), b"tessera"),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(rewrapped)
    }
}

/// Seconds a retired key outlives its last token in the JWKS, beyond `jwks_max_age`.
const RETIRED_LEEWAY: i64 = 60;
