//! The typed claims of a tessera access token (RFC 9068 §2.2) and the checks on them.

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// The one leeway, in seconds, for `exp`, `nbf` and `iat` (clock skew).
pub const LEEWAY: i64 = 5;

/// `aud`: one string or an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, as tessera issues it.
    One(String),
    /// Several audiences (RFC 8707 `resource` requests may yield more than one).
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is among the audiences (exact string match).
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(list) => list.iter().any(|a| a == aud),
        }
    }
}

/// A verified access token's claims. `sid` and `ver` are present on user tokens
/// (absent on `client_credentials` tokens, whose `sub` is the client id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer; checked against [`crate::Settings::issuer`] before the claims are returned.
    pub iss: String,
    /// The user's id, or the client id for a `client_credentials` token.
    pub sub: String,
    /// Checked to include [`crate::Settings::audience`].
    pub aud: Audience,
    /// The client the token was issued to (RFC 9068 §2.2).
    pub client_id: String,
    /// Space-separated scopes; see [`Claims::has_scope`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user's roles when the token was issued; the feed refuses it once they change.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds; checked with [`LEEWAY`].
    pub exp: i64,
    /// Not before, Unix seconds, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token's unique id.
    pub jti: String,
    /// The refresh family (session) the token belongs to; a revoked one refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's permission version at issue; an older one than the feed's refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
}

impl Claims {
    /// Whether the token carries `role` (exact match); see [`Claims::require_role`] for a 403.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether `scope` (space-separated, RFC 6749 §3.3) includes `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == wanted))
    }

    /// 403 `insufficient_scope` unless the token carries `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Rejection> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Rejection::MissingRole(role.to_string()))
        }
    }

    /// 403 `insufficient_scope` (naming the scope) unless the token was granted `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), Rejection> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Rejection::MissingScope(scope.to_string()))
        }
    }

    /// RFC 9068 §4 / RFC 8725 §3.8-3.10: exact `iss`, `aud` includes ours, and
    /// `exp`/`nbf`/`iat` against `now` with the one [`LEEWAY`].
    pub fn check(&self, issuer: &str, audience: &str, now: i64) -> Result<(), Rejection> {
        if self.iss != issuer {
            return Err(Rejection::Invalid("wrong issuer"));
        }
        if !self.aud.contains(audience) {
            return Err(Rejection::Invalid("wrong audience"));
        }
        if now > self.exp + LEEWAY {
            return Err(Rejection::Expired);
        }
        if self.nbf.is_some_and(|nbf| nbf > now + LEEWAY) {
            return Err(Rejection::Invalid("not yet valid"));
        }
        if self.iat > now + LEEWAY {
            return Err(Rejection::Invalid("issued in the future"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn claims() -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://id.example", "sub": "u1", "aud": ["https://api.example", "x"],
            "client_id": "app", "scope": "read write", "roles": ["editor"],
            "iat": 1000, "exp": 1300, "jti": "j", "sid": "s1", "ver": 2
        }))
        .unwrap()
    }

    #[test]
    fn iss_aud_and_times_are_checked_with_one_leeway() {
        let c = claims();
        let ok = |c: &Claims, now| c.check("https://id.example", "https://api.example", now);
        assert_eq!(ok(&c, 1000), Ok(()));
        assert_eq!(ok(&c, 1300 + LEEWAY), Ok(()));
        assert_eq!(ok(&c, 1301 + LEEWAY), Err(Rejection::Expired));
        assert_eq!(ok(&c, 1000 - LEEWAY), Ok(()));
        assert_eq!(
            ok(&c, 999 - LEEWAY),
            Err(Rejection::Invalid("issued in the future"))
        );
        let nbf = Claims {
            nbf: Some(1100),
            ..c.clone()
        };
        assert_eq!(ok(&nbf, 1094), Err(Rejection::Invalid("not yet valid")));
        assert_eq!(
            c.check("https://id.example/", "https://api.example", 1000),
            Err(Rejection::Invalid("wrong issuer"))
        );
        assert_eq!(
            c.check("https://id.example", "https://other.example", 1000),
            Err(Rejection::Invalid("wrong audience"))
        );
    }

    #[test]
    fn required_claims_are_required_and_roles_scopes_are_exact() {
        let mut v = serde_json::to_value(claims()).unwrap();
        v.as_object_mut().unwrap().remove("jti");
        assert!(serde_json::from_value::<Claims>(v).is_err());
        let c = claims();
        assert!(c.require_role("editor").is_ok());
        assert_eq!(
            c.require_role("edit"),
            Err(Rejection::MissingRole("edit".into()))
        );
        assert!(c.require_scope("write").is_ok());
        assert_eq!(
            c.require_scope("rea"),
            Err(Rejection::MissingScope("rea".into()))
        );
    }
}
