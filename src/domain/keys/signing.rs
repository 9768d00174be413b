//! JWS signing with ring, and generation of new key pairs.
//!
//! Hand-written on ring, not jsonwebtoken's encoder: one crypto library signs and
//! verifies (tessera-jose), and the header is encoded once per key (benches/crypto.rs).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde::Serialize;
use serde_json::json;

use super::KeyError;
use super::jwk::{Jwk, PublicMembers};
use crate::config::SigningAlg;
use crate::crypto::b64;

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A key that signs: its pre-encoded JWS header and the ring key pair.
pub struct SigningKey {
    /// The key's id, put in every header it signs.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: SigningAlg,
    header_b64: String,
    /// The same header with `typ: JWT`, for OpenID Connect ID tokens.
    id_header_b64: String,
    /// The same header with `typ: secevent+jwt`, for Security Event Tokens (RFC 8417 §2.3).
    set_header_b64: String,
    signer: Signer,
    rng: SystemRandom,
}

impl SigningKey {
    /// Loads a PKCS#8 DER private key of `alg`; `CorruptKey` when ring rejects it.
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
        let set_header = json!({"alg": alg.as_str(), "kid": kid, "typ": "secevent+jwt"});
        Ok(Self {
            kid: kid.into(),
            alg,
            header_b64: b64(header.to_string().as_bytes()),
            id_header_b64: b64(id_header.to_string().as_bytes()),
            set_header_b64: b64(set_header.to_string().as_bytes()),
            signer,
            rng,
        })
    }

    /// The public members of this key (its JWK without `kid`, `use`, `alg`).
    pub(super) fn public_members(&self) -> PublicMembers {
        match &self.signer {
            Signer::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                PublicMembers::Ec {
                    x: b64(&point[1..33]),
                    y: b64(&point[33..65]),
                }
            }
            Signer::Ed25519(k) => PublicMembers::Okp {
                x: b64(k.public_key().as_ref()),
            },
            Signer::Rsa(k) => {
                let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public());
                let strip = |v: &[u8]| b64(&v[v.iter().take_while(|b| **b == 0).count()..]);
                PublicMembers::Rsa {
                    n: strip(&c.n),
                    e: strip(&c.e),
                }
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

    /// Signs Security Event Token `claims` (`typ: secevent+jwt`, RFC 8417 §2.3).
    pub fn sign_set(&self, claims: &impl Serialize) -> String {
        self.sign_with(&self.set_header_b64, claims)
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

/// A generated key: its kid (the RFC 7638 thumbprint), PKCS#8 DER and public JWK.
pub type Generated = (String, Vec<u8>, Jwk);

/// Generates a key pair of `alg`.
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
    let kid = members.thumbprint();
    let jwk = Jwk::new(&members, &kid, alg.as_str());
    Ok((kid, pkcs8, jwk))
}
