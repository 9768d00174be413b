//! The enumerated values a setting can take, with their spellings.

/// What a role change does to the user's live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionChangePolicy {
    /// Role changes revoke the user's refresh families.
    Revoke,
    /// Families stay alive; the next refresh carries the new roles.
    Reissue,
}

impl PermissionChangePolicy {
    /// Reads the setting's spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revoke" => Some(Self::Revoke),
            "reissue" => Some(Self::Reissue),
            _ => None,
        }
    }

    /// The setting's spelling, as [`Self::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Reissue => "reissue",
        }
    }
}

/// The JWS algorithm of newly generated signing keys (existing keys keep theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    /// ECDSA on P-256 with SHA-256: the default.
    ES256,
    /// Ed25519: the smallest keys and signatures.
    EdDSA,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048-bit keys), for verifiers that know no other.
    RS256,
}

impl SigningAlg {
    /// Reads an `alg` name, case-insensitively (`Ed25519` for `EdDSA` too).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Some(Self::ES256),
            "EDDSA" | "ED25519" => Some(Self::EdDSA),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    /// The JWS `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}
