//! The one crypto stack: ring for randomness, digests, AEAD and signatures.
//!
//! jsonwebtoken is built without a backend; [`install_jwt_provider`] plugs ring
//! in as its verifier so that every signature check in the process goes
//! through the same library that signs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};

/// Length of an AES-256-GCM key (our key-encryption key among them).
pub const AEAD_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("decryption failed: wrong key or corrupted data")]
pub struct OpenError;

/// Fills a fixed-size array from the system CSPRNG.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .expect("the system random number generator failed");
    out
}

/// 256 random bits, base64url without padding: refresh tokens and client secrets.
pub fn random_token() -> String {
    b64(&random::<32>())
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// Constant-time equality for secrets and their digests.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AES-256-GCM with a random nonce; output is `nonce || ciphertext || tag`.
/// `aad` binds the ciphertext to its context (a key id, a token hash).
pub fn seal(key: &[u8; AEAD_KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte key"));
    let nonce_bytes = random::<NONCE_LEN>();
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(aad),
        &mut buf,
    )
    .expect("AES-GCM seal");
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    out
}

pub fn open(key: &[u8; AEAD_KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < NONCE_LEN {
        return Err(OpenError);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| OpenError)?);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
    let mut buf = ciphertext.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| OpenError)?;
    Ok(plain.to_vec())
}

/// Installs ring as jsonwebtoken's process-wide provider. Idempotent.
pub fn install_jwt_provider() {
    let _ = RING_PROVIDER.install_default();
}

static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: |_, _: &EncodingKey| {
        // tessera signs with ring directly (see `domain::keys`); jsonwebtoken only verifies.
        Err(JwtError::from(ErrorKind::InvalidAlgorithm))
    },
    verifier_factory: ring_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| {
            Err(ErrorKind::InvalidRsaKey("unsupported".into()).into())
        },
        rsa_pub_components_from_public_key: |_| {
            Err(ErrorKind::InvalidRsaKey("unsupported".into()).into())
        },
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEcdsaKey.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEddsaKey.into()),
        compute_digest: |data, _| Ok(sha256(data).to_vec()),
    },
};

struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

fn ring_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    // The key's family must match the algorithm: an HMAC "key" made of a public
    // key's bytes never verifies anything (RFC 8725 §2.1).
    let supported = matches!(
        (alg, key.family(), key.kind()),
        (
            Algorithm::ES256,
            AlgorithmFamily::Ec,
            DecodingKeyKind::SecretOrDer(_)
        ) | (
            Algorithm::EdDSA,
            AlgorithmFamily::Ed,
            DecodingKeyKind::SecretOrDer(_)
        ) | (
            Algorithm::RS256,
            AlgorithmFamily::Rsa,
            DecodingKeyKind::RsaModulusExponent { .. }
        )
    );
    if !supported {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: key.clone(),
    }))
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match (self.alg, self.key.kind()) {
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(msg, sig)
            }
            (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(x)) => {
                UnparsedPublicKey::new(&ED25519, x).verify(msg, sig)
            }
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, msg, sig)
            }
            _ => Err(ring::error::Unspecified),
        };
        ok.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}
