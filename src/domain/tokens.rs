//! RFC 9068 access tokens: the claims, minting and the token response.

use serde::{Deserialize, Serialize};

use super::Core;
use crate::crypto;
use crate::error::OAuthError;

/// `aud`: one string when there is one audience, an array otherwise (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialised as a plain string.
    One(String),
    /// Several audiences (or none), serialised as an array.
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

    /// Whether `aud` names `audience` (RFC 7519 §4.1.3: a string or an array).
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// The claims of an access token (RFC 9068 §2.2), as minted and as verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer, the configured `issuer`.
    pub iss: String,
    /// The user's id, or the client's id for a client-credentials token.
    pub sub: String,
    /// The resource servers the token is for.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated; absent when the grant has no scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user's roles when minted (the client's own for a client token).
    pub roles: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds: `iat` plus `access_token_ttl`.
    pub exp: i64,
    /// A random id, unique per token.
    pub jti: String,
    /// The refresh family (session) a user token came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's authorization version when the token was minted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
}

impl super::keys::Expiring for AccessClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// RFC 6749 §5.1.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The signed JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The new refresh token; absent for grants that issue none (client credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scope; absent when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OpenID Connect Core §3.1.3.3, for scope `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Who the token is for.
pub struct Subject<'a> {
    /// The `sub` claim: a user id, or a client id for a client token.
    pub sub: &'a str,
    /// The roles to put in the token.
    pub roles: Vec<String>,
    /// The refresh family of a user token; `None` for a client token.
    pub sid: Option<&'a str>,
    /// The user's `authz_version`; `None` for a client token.
    pub ver: Option<i64>,
}

impl Core {
    /// Mints a signed access token and wraps it in a token response.
    pub fn issue(
        &self,
        client_id: &str,
        subject: Subject<'_>,
        scope: &str,
        audience: Vec<String>,
        refresh_token: Option<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.clock.now();
        let ttl = self.cfg.access_token_ttl.as_secs();
        let scope = (!scope.is_empty()).then(|| scope.to_string());
        let claims = AccessClaims {
            iss: self.cfg.issuer.clone(),
            sub: subject.sub.to_string(),
            aud: Audience::from_list(audience),
            client_id: client_id.to_string(),
            scope: scope.clone(),
            roles: subject.roles,
            iat: now,
            exp: now + ttl as i64,
            jti: crypto::b64(&crypto::random::<16>()),
            sid: subject.sid.map(str::to_string),
            ver: subject.ver,
        };
        let access_token = self.keys.current().active.sign(&claims);
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token,
            scope,
            id_token: None,
        })
    }
}
