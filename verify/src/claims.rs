//! The typed claims of a tessera access token (RFC 9068 §2.2) and the checks on them.

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// The one leeway, in seconds, for `exp`, `nbf` and `iat` (clock skew).
pub const LEEWAY: i64 = 5;

/// `aud`: one string or an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
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
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
}

impl Claims {
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

    pub fn claims() -> Claims {
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
