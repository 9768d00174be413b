//! The one JOSE stack of tessera and tessera-verify: ring verifies for jsonwebtoken,
//! and a published JWK becomes a decoding key only when its members fit its algorithm.
//!
//! jsonwebtoken is built without a backend; [`install`] plugs ring in as its
//! verifier so that every signature check in the process goes through the same
//! library that signs.

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::digest::{SHA256, digest};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use serde_json::Value;

/// Installs ring as jsonwebtoken's process-wide provider. Idempotent.
pub fn install() {
    let _ = RING_PROVIDER.install_default();
}

/// Why a JWK cannot verify anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadJwk(pub &'static str);

impl std::fmt::Display for BadJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BadJwk {}

/// The algorithm a JWK's `alg` names, among those tessera signs with.
pub fn algorithm(jwk: &Value) -> Result<Algorithm, BadJwk> {
    match jwk["alg"].as_str() {
        Some("ES256") => Ok(Algorithm::ES256),
        Some("EdDSA") => Ok(Algorithm::EdDSA),
        Some("RS256") => Ok(Algorithm::RS256),
        _ => Err(BadJwk("alg is missing or not ES256, EdDSA or RS256")),
    }
}

/// The decoding key of a public JWK for `alg`, after checking that `kty`/`crv` and
/// the member sizes fit it (RFC 7518, RFC 8037): a key never verifies under an
/// algorithm it was not made for (RFC 8725 §2.1).
pub fn public_key(alg: Algorithm, jwk: &Value) -> Result<DecodingKey, BadJwk> {
    let member = |name: &'static str| jwk[name].as_str().ok_or(BadJwk("a member is missing"));
    let sized = |name: &'static str, len: usize| -> Result<&str, BadJwk> {
        let v = member(name)?;
        (b64_len(v) == Some(len))
            .then_some(v)
            .ok_or(BadJwk("a member has the wrong size"))
    };
    let (kty, crv) = (jwk["kty"].as_str(), jwk["crv"].as_str());
    let key = match alg {
        Algorithm::ES256 if kty == Some("EC") && crv == Some("P-256") => {
            DecodingKey::from_ec_components(sized("x", 32)?, sized("y", 32)?)
        }
        Algorithm::EdDSA if kty == Some("OKP") && crv == Some("Ed25519") => {
            DecodingKey::from_ed_components(sized("x", 32)?)
        }
        Algorithm::RS256 if kty == Some("RSA") => {
            let n = member("n")?;
            // A leading zero octet ("A" then a sextet below 16) would hide a short modulus.
            let leading_zero =
                n.starts_with('A') && n[1..].starts_with(|c| ('A'..='P').contains(&c));
            if b64_len(n).is_none_or(|len| len < 256) || leading_zero {
                return Err(BadJwk("the RSA modulus is shorter than 2048 bits"));
            }
            DecodingKey::from_rsa_components(n, member("e")?)
        }
        _ => return Err(BadJwk("kty/crv do not fit alg")),
    };
    key.map_err(|_| BadJwk("a member is not base64url"))
}

/// Decoded length of unpadded base64url, if it is well-formed.
fn b64_len(s: &str) -> Option<usize> {
    let valid = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (valid && s.len() % 4 != 1).then_some(s.len() * 3 / 4)
}

static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: |_, _: &EncodingKey| {
        // tessera signs with ring directly; jsonwebtoken only verifies.
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
        compute_digest: |data, _| Ok(digest(&SHA256, data).as_ref().to_vec()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn a_key_fits_only_its_own_algorithm() {
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": X, "alg": "EdDSA"});
        assert_eq!(algorithm(&ed), Ok(Algorithm::EdDSA));
        assert!(public_key(Algorithm::EdDSA, &ed).is_ok());
        assert!(public_key(Algorithm::ES256, &ed).is_err());
        assert!(public_key(Algorithm::RS256, &ed).is_err());
        let short = json!({"kty": "OKP", "crv": "Ed25519", "x": &X[..20]});
        assert_eq!(
            public_key(Algorithm::EdDSA, &short).err(),
            Some(BadJwk("a member has the wrong size"))
        );
        assert!(algorithm(&json!({"alg": "HS256"})).is_err());
        assert!(algorithm(&json!({"alg": "none"})).is_err());
    }
}
