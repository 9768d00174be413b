//! Public JWKs as typed values (RFC 7517, 7518, 8037) and their RFC 7638 thumbprints.
//!
//! A key's public half is one of three shapes with every member required, so a
//! thumbprint or a published JWK can never carry an empty member.

use serde::{Deserialize, Serialize};

use crate::crypto::{b64, sha256};

/// The public members of a key, by key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicMembers {
    /// P-256: the point's coordinates, base64url.
    Ec {
        /// The x coordinate.
        x: String,
        /// The y coordinate.
        y: String,
    },
    /// Ed25519: the public key, base64url.
    Okp {
        /// The 32-byte public key.
        x: String,
    },
    /// RSA: modulus and exponent without leading zero octets, base64url.
    Rsa {
        /// The modulus.
        n: String,
        /// The public exponent.
        e: String,
    },
}

impl PublicMembers {
    /// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
    pub fn thumbprint(&self) -> String {
        // Fields in lexicographic order: serde_json writes them as declared.
        #[derive(Serialize)]
        struct Ec<'a> {
            crv: &'a str,
            kty: &'a str,
            x: &'a str,
            y: &'a str,
        }
        #[derive(Serialize)]
        struct Okp<'a> {
            crv: &'a str,
            kty: &'a str,
            x: &'a str,
        }
        #[derive(Serialize)]
        struct Rsa<'a> {
            e: &'a str,
            kty: &'a str,
            n: &'a str,
        }
        let canonical = match self {
            Self::Ec { x, y } => serde_json::to_string(&Ec {
                crv: "P-256",
                kty: "EC",
                x,
                y,
            }),
            Self::Okp { x } => serde_json::to_string(&Okp {
                crv: "Ed25519",
                kty: "OKP",
                x,
            }),
            Self::Rsa { n, e } => serde_json::to_string(&Rsa { e, kty: "RSA", n }),
        }
        .expect("strings serialise");
        b64(&sha256(canonical.as_bytes()))
    }
}

/// A published signing JWK. Members are declared in lexicographic order, the order
/// in which the JWKS has always been written; a member the key type does not use is
/// left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// The JWS algorithm the key signs with; tokens under this `kid` in another `alg`
    /// are refused.
    pub alg: String,
    /// The curve (`P-256`, `Ed25519`); absent for RSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The RSA public exponent; absent for other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The key's id, its RFC 7638 thumbprint.
    pub kid: String,
    /// The key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// The RSA modulus; absent for other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// Always `sig`: these keys only sign.
    #[serde(rename = "use")]
    pub use_: String,
    /// The EC x coordinate or the Ed25519 key; absent for RSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The EC y coordinate; absent for other types.
    pub y: Option<String>,
}

/// Why a stored JWK does not describe a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("public JWK: {0}")]
pub struct BadMembers(&'static str);

impl Jwk {
    /// The JWK of a signing key (`use: sig`) with `kid` and `alg`.
    pub fn new(members: &PublicMembers, kid: &str, alg: &str) -> Self {
        let (kty, crv, x, y, n, e) = match members.clone() {
            PublicMembers::Ec { x, y } => ("EC", Some("P-256"), Some(x), Some(y), None, None),
            PublicMembers::Okp { x } => ("OKP", Some("Ed25519"), Some(x), None, None, None),
            PublicMembers::Rsa { n, e } => ("RSA", None, None, None, Some(n), Some(e)),
        };
        Self {
            alg: alg.into(),
            crv: crv.map(Into::into),
            e,
            kid: kid.into(),
            kty: kty.into(),
            n,
            use_: "sig".into(),
            x,
            y,
        }
    }

    /// The public members; a missing one, or a `kty`/`crv` tessera does not make, is an error.
    pub fn members(&self) -> Result<PublicMembers, BadMembers> {
        let need = |v: &Option<String>| v.clone().ok_or(BadMembers("a member is missing"));
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => Ok(PublicMembers::Ec {
                x: need(&self.x)?,
                y: need(&self.y)?,
            }),
            ("OKP", Some("Ed25519")) => Ok(PublicMembers::Okp { x: need(&self.x)? }),
            ("RSA", None) => Ok(PublicMembers::Rsa {
                n: need(&self.n)?,
                e: need(&self.e)?,
            }),
            _ => Err(BadMembers("unknown kty/crv")),
        }
    }
}

/// The published key set, `{"keys": [...]}`.
#[derive(Serialize)]
pub(super) struct Jwks<'a> {
    pub(super) keys: &'a [Jwk],
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn rfc7638_example_thumbprint() {
        let members = PublicMembers::Rsa {
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            members.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_missing_member_is_an_error_not_empty() {
        let mut jwk = Jwk::new(
            &PublicMembers::Ec {
                x: "x".into(),
                y: "y".into(),
            },
            "k",
            "ES256",
        );
        assert!(jwk.members().is_ok());
        jwk.y = None;
        assert_eq!(jwk.members(), Err(BadMembers("a member is missing")));
        let parsed: Result<Jwk, _> = serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a"}"#);
        assert!(parsed.is_err(), "alg, kid and use are required");
    }

    #[test]
    fn members_are_written_in_lexicographic_order() {
        let jwk = Jwk::new(
            &PublicMembers::Ec {
                x: "X".into(),
                y: "Y".into(),
            },
            "K",
            "ES256",
        );
        assert_eq!(
            serde_json::to_string(&jwk).unwrap(),
            r#"{"alg":"ES256","crv":"P-256","kid":"K","kty":"EC","use":"sig","x":"X","y":"Y"}"#
        );
    }
}
