//! The one crypto stack: ring for randomness, digests, AEAD and signatures.
//!
//! jsonwebtoken is built without a backend; [`install_jwt_provider`] (from the
//! `tessera-jose` crate, which tessera-verify shares) plugs ring in as its verifier
//! so that every signature check in the process goes through the same library that signs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Length of an AES-256-GCM key (our key-encryption key among them).
pub const AEAD_KEY_LEN: usize = 32;

/// Sealed data did not decrypt: wrong key, wrong additional data or tampered bytes
/// (deliberately one case).
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

/// 128 random bits, base64url without padding, for identifiers that must be unique and
/// unguessable but guard nothing (`jti`, request ids): taken from a per-thread batch of
/// system randomness, one `getrandom` call per 256 identifiers instead of one each.
/// Secrets (tokens, keys, nonces) keep calling [`random`].
pub fn unique_id() -> String {
    const BATCH: usize = 4096;
    thread_local! {
        static POOL: std::cell::RefCell<(Box<[u8; BATCH]>, usize)> =
            std::cell::RefCell::new((Box::new([0; BATCH]), BATCH));
    }
    POOL.with_borrow_mut(|(bytes, used)| {
        if *used == BATCH {
            SystemRandom::new()
                .fill(&mut bytes[..])
                .expect("the system random number generator failed");
            *used = 0;
        }
        let id = b64(&bytes[*used..*used + 16]);
        // Handed out once: the bytes are not kept.
        bytes[*used..*used + 16].fill(0);
        *used += 16;
        id
    })
}

/// 256 random bits, base64url without padding: refresh tokens and client secrets.
pub fn random_token() -> String {
    b64(&random::<32>())
}

/// Unpadded base64url, the encoding of every JOSE member and opaque token.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256; what tessera stores of every opaque token instead of the token.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// HMAC-SHA-256 (RFC 2104): signs values tessera hands out and reads back (device cookies).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::hmac::sign(&key, data).as_ref());
    out
}

/// Constant-time equality for secrets and their digests (`subtle`; the lengths
/// are not secret: digests have a fixed one).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
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

/// Opens what [`seal`] sealed under the same key and additional data.
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

/// Installs ring as jsonwebtoken's process-wide provider (shared with tessera-verify). Idempotent.
pub use tessera_jose::install as install_jwt_provider;

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"digest", b"digest"));
        assert!(!ct_eq(b"digest", b"digesT"));
        assert!(!ct_eq(b"digest", b"diges"));
        assert!(ct_eq(b"", b""));
    }
}
