//! What both benchmarks sign and verify: a realistic access token's claims, and for
//! each algorithm a fresh key, the matching decoding key and the server's validation.

use serde_json::{Value, json};
use tessera::config::SigningAlg;
use tessera::domain::keys::SigningKey;

pub(crate) fn claims() -> Value {
    json!({"iss": "http://127.0.0.1:8080", "sub": "bench", "aud": "urn:bench:api", "client_id": "bench",
        "scope": "api:read", "roles": ["reader"], "iat": 1_800_000_000, "exp": 1_800_000_300, "jti": "abcdefghijklmnopqrstuv"})
}

pub(crate) struct Fixture {
    pub alg: SigningAlg,
    pub key: SigningKey,
    pub decoding: jsonwebtoken::DecodingKey,
    pub validation: jsonwebtoken::Validation,
    /// The public JWK, as published.
    #[allow(
        dead_code,
        reason = "read by the verify bench only; #[expect] would fail there"
    )]
    pub jwk: Value,
}

/// ES256, EdDSA and RS256, verified through jsonwebtoken with tessera's ring provider.
pub(crate) fn fixtures() -> Vec<Fixture> {
    tessera::crypto::install_jwt_provider();
    [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256]
        .into_iter()
        .map(|alg| {
            let (kid, pkcs8, jwk) = tessera::domain::keys::generate(alg).unwrap();
            let jwk = serde_json::to_value(jwk).unwrap();
            let key = SigningKey::from_pkcs8(&kid, alg, &pkcs8).unwrap();
            let s = |k: &str| jwk[k].as_str().unwrap_or_default().to_string();
            let (decoding, jwt_alg) = match alg {
                SigningAlg::ES256 => (
                    jsonwebtoken::DecodingKey::from_ec_components(&s("x"), &s("y")),
                    jsonwebtoken::Algorithm::ES256,
                ),
                SigningAlg::EdDSA => (
                    jsonwebtoken::DecodingKey::from_ed_components(&s("x")),
                    jsonwebtoken::Algorithm::EdDSA,
                ),
                SigningAlg::RS256 => (
                    jsonwebtoken::DecodingKey::from_rsa_components(&s("n"), &s("e")),
                    jsonwebtoken::Algorithm::RS256,
                ),
            };
            let mut validation = jsonwebtoken::Validation::new(jwt_alg);
            validation.validate_exp = false;
            validation.validate_aud = false;
            Fixture {
                alg,
                key,
                decoding: decoding.unwrap(),
                validation,
                jwk,
            }
        })
        .collect()
}
