//! The claims of an access token (RFC 9068 §2.2), as the server mints them and a
//! verifier reads them.

use serde::{Deserialize, Serialize};

/// `aud`: one string when there is one audience, an array otherwise (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialised as a plain string (as tessera issues one).
    One(String),
    /// Several audiences (or none), serialised as an array (RFC 8707 `resource`
    /// requests may yield more than one).
    Many(Vec<String>),
}

impl Audience {
    /// `One` for a one-element list, `Many` otherwise.
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Self::One(list.remove(0))
        } else {
            Self::Many(list)
        }
    }

    /// Whether `aud` names `audience` (exact string match).
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// The claims of an access token. `sid` and `ver` are present on user tokens, absent on
/// `client_credentials` tokens (whose `sub` is the client id). The server never writes
/// `nbf`; a verifier checks it when present. Optional members and `roles` default when
/// absent, so a verifier accepts a token that leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer, the configured `issuer`.
    pub iss: String,
    /// The user's id, or the client's id for a client-credentials token.
    pub sub: String,
    /// The resource servers the token is for.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated (RFC 6749 §3.3); absent when the grant has no scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user's roles when minted (the client's own for a client token).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds: `iat` plus `access_token_ttl`.
    pub exp: i64,
    /// Not before, Unix seconds, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// A random id, unique per token.
    pub jti: String,
    /// The refresh family (session) a user token came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's authorization version when the token was minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
    /// How the user signed in (RFC 8176: `pwd`, `otp`, `hwk`, `swk`, `mfa`); absent on
    /// client tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

impl AccessClaims {
    /// Whether the token carries `role` (exact match).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether `amr` names the authentication method `method` (exact match).
    pub fn has_amr(&self, method: &str) -> bool {
        self.amr
            .as_ref()
            .is_some_and(|a| a.iter().any(|m| m == method))
    }

    /// Whether `scope` (space-separated, RFC 6749 §3.3) includes `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_token() -> AccessClaims {
        AccessClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: Audience::from_list(vec!["https://api.example".into()]),
            client_id: "app".into(),
            scope: Some("read write".into()),
            roles: vec!["editor".into()],
            iat: 1000,
            exp: 1300,
            nbf: None,
            jti: "j".into(),
            sid: Some("s1".into()),
            ver: Some(2),
            amr: None,
        }
    }

    #[test]
    fn a_user_token_has_the_exact_wire_shape_and_round_trips() {
        let c = user_token();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"iss":"https://id.example","sub":"u1","aud":"https://api.example","client_id":"app","scope":"read write","roles":["editor"],"iat":1000,"exp":1300,"jti":"j","sid":"s1","ver":2}"#
        );
        assert_eq!(serde_json::from_str::<AccessClaims>(&json).unwrap(), c);
    }

    #[test]
    fn a_client_token_leaves_out_what_does_not_apply() {
        let c = AccessClaims {
            aud: Audience::from_list(vec!["a".into(), "b".into()]),
            scope: None,
            sid: None,
            ver: None,
            ..user_token()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"iss":"https://id.example","sub":"u1","aud":["a","b"],"client_id":"app","roles":["editor"],"iat":1000,"exp":1300,"jti":"j"}"#
        );
    }

    #[test]
    fn optional_members_default_and_required_ones_are_required() {
        let min =
            r#"{"iss":"i","sub":"s","aud":"a","client_id":"c","iat":1,"exp":2,"jti":"j","nbf":1}"#;
        let c: AccessClaims = serde_json::from_str(min).unwrap();
        assert_eq!((c.roles.len(), c.scope, c.nbf), (0, None, Some(1)));
        let no_jti = r#"{"iss":"i","sub":"s","aud":"a","client_id":"c","iat":1,"exp":2}"#;
        assert!(serde_json::from_str::<AccessClaims>(no_jti).is_err());
    }

    #[test]
    fn roles_scopes_and_audiences_match_exactly() {
        let c = user_token();
        assert!(c.has_role("editor") && !c.has_role("edit"));
        assert!(c.has_scope("write") && !c.has_scope("rea"));
        let mfa = AccessClaims {
            amr: Some(vec!["pwd".into(), "otp".into(), "mfa".into()]),
            ..user_token()
        };
        assert!(mfa.has_amr("otp") && !mfa.has_amr("hwk") && !c.has_amr("pwd"));
        assert!(c.aud.contains("https://api.example") && !c.aud.contains("https://api"));
    }
}
