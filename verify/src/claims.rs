//! The checks on a tessera access token's claims (RFC 9068 §4); the claims themselves
//! are `tessera_proto::AccessClaims`.

use crate::Rejection;

/// The one leeway, in seconds, for `exp`, `nbf` and `iat` (clock skew).
pub const LEEWAY: i64 = 5;

pub use tessera_proto::{AccessClaims as Claims, Audience};

/// The checks a resource server makes on verified claims, as [`Rejection`]s (the claims
/// themselves are the wire type both sides share).
pub trait ClaimsExt {
    /// 403 `insufficient_scope` unless the token carries `role`.
    fn require_role(&self, role: &str) -> Result<(), Rejection>;
    /// 403 `insufficient_scope` (naming the scope) unless the token was granted `scope`.
    fn require_scope(&self, scope: &str) -> Result<(), Rejection>;
    /// 401 `insufficient_user_authentication` (RFC 9470) unless the user signed in with
    /// `method` (an `amr` value, RFC 8176: `mfa`, `otp`, `hwk`, ...).
    fn require_amr(&self, method: &str) -> Result<(), Rejection>;
}

impl ClaimsExt for Claims {
    fn require_role(&self, role: &str) -> Result<(), Rejection> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Rejection::MissingRole(role.to_string()))
        }
    }

    fn require_scope(&self, scope: &str) -> Result<(), Rejection> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Rejection::MissingScope(scope.to_string()))
        }
    }

    fn require_amr(&self, method: &str) -> Result<(), Rejection> {
        if self.has_amr(method) {
            Ok(())
        } else {
            Err(Rejection::MissingAmr(method.to_string()))
        }
    }
}

/// RFC 9068 §4 / RFC 8725 §3.8-3.10: exact `iss`, `aud` includes ours, and
/// `exp`/`nbf`/`iat` against `now` with the one [`LEEWAY`].
pub(crate) fn check(c: &Claims, issuer: &str, audience: &str, now: i64) -> Result<(), Rejection> {
    if c.iss != issuer {
        return Err(Rejection::Invalid("wrong issuer"));
    }
    if !c.aud.contains(audience) {
        return Err(Rejection::Invalid("wrong audience"));
    }
    if now > c.exp + LEEWAY {
        return Err(Rejection::Expired);
    }
    if c.nbf.is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err(Rejection::Invalid("not yet valid"));
    }
    if c.iat > now + LEEWAY {
        return Err(Rejection::Invalid("issued in the future"));
    }
    Ok(())
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
        let ok = |c: &Claims, now| check(c, "https://id.example", "https://api.example", now);
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
            check(&c, "https://id.example/", "https://api.example", 1000),
            Err(Rejection::Invalid("wrong issuer"))
        );
        assert_eq!(
            check(&c, "https://id.example", "https://other.example", 1000),
            Err(Rejection::Invalid("wrong audience"))
        );
    }

    #[test]
    fn a_missing_role_or_scope_is_a_403_naming_it() {
        // Which claims are required, and exact matching, are proto's (its tests).
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

    #[test]
    fn a_missing_authentication_method_is_a_401_step_up() {
        let pwd = Claims {
            amr: Some(vec!["pwd".into()]),
            ..claims()
        };
        let refused = pwd.require_amr("mfa").unwrap_err();
        assert_eq!(refused, Rejection::MissingAmr("mfa".into()));
        assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(refused.error(), Some("insufficient_user_authentication"));
        assert!(claims().require_amr("pwd").is_err(), "no amr at all");
        let mfa = Claims {
            amr: Some(vec!["pwd".into(), "otp".into(), "mfa".into()]),
            ..claims()
        };
        assert!(mfa.require_amr("mfa").is_ok() && mfa.require_amr("otp").is_ok());
    }
}
