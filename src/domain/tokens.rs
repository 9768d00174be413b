//! RFC 9068 access tokens and OpenID Connect ID tokens: the claims, minting and the token
//! response.

use std::sync::Arc;

use serde::Serialize;

use super::clock::Clock;
use super::keys::{KeyRing, KeySet};
use crate::config::{Config, SigningAlg};
use crate::crypto::{self, b64, sha256};
use crate::error::OAuthError;

/// The claims and `aud` are the wire types the verifier shares (proto/).
pub use tessera_proto::{AccessClaims, Audience};

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
    /// How the user signed in (RFC 8176); `None` for a client token.
    pub amr: Option<Vec<String>>,
}

/// What an ID token says of a sign-in (OpenID Connect Core §2).
pub struct IdToken<'a> {
    /// The user.
    pub sub: &'a str,
    /// The client it is for (`aud`).
    pub client_id: &'a str,
    /// When the user signed in.
    pub auth_time: i64,
    /// The authorization request's `nonce`, echoed.
    pub nonce: Option<&'a str>,
    /// The session (refresh family) behind the access token issued with it.
    pub sid: &'a str,
    /// How the user signed in (RFC 8176).
    pub amr: Vec<String>,
    /// The authentication context class the sign-in reached.
    pub acr: &'a str,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    sid: &'a str,
    at_hash: String,
    amr: Vec<String>,
    acr: &'a str,
}

/// OpenID Connect Core §3.1.3.6: the left half of the hash the signing alg uses.
fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    match alg {
        SigningAlg::ES256 | SigningAlg::RS256 => b64(&sha256(access_token.as_bytes())[..16]),
        SigningAlg::EdDSA => {
            let d = ring::digest::digest(&ring::digest::SHA512, access_token.as_bytes());
            b64(&d.as_ref()[..32])
        }
    }
}

/// Mints access and ID tokens: the signing keys in memory, the clock and the settings, no
/// database. Built once by `Core::open`; cheap to clone (shared parts).
#[derive(Clone)]
pub struct Tokens {
    /// The settings (issuer, access-token lifetime).
    pub cfg: Arc<Config>,
    /// The server's clock (`iat`, `exp`).
    pub clock: Arc<Clock>,
    /// The key set in memory, shared with the key rotation.
    pub keys: Arc<KeyRing>,
}

impl Tokens {
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
            nbf: None,
            jti: crypto::unique_id(),
            sid: subject.sid.map(str::to_string),
            ver: subject.ver,
            amr: subject.amr,
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

    /// Signs the ID token that goes with `access_token` (its `at_hash`), with the key of
    /// `keys` that signs ID tokens in `alg` (the client's; `None`: the active key's).
    /// `keys` is given: an RS256 client may need a chain the caller has just started.
    pub fn id_token(
        &self,
        keys: &KeySet,
        alg: Option<SigningAlg>,
        id: IdToken<'_>,
        access_token: &str,
    ) -> Result<String, OAuthError> {
        let signer = keys.id_token_signer(alg).ok_or(OAuthError::Internal(
            "no key signs this client's ID tokens".into(),
        ))?;
        let now = self.clock.now();
        let claims = IdClaims {
            iss: &self.cfg.issuer,
            sub: id.sub,
            aud: id.client_id,
            iat: now,
            exp: now + self.cfg.access_token_ttl.as_secs() as i64,
            auth_time: id.auth_time,
            nonce: id.nonce,
            sid: id.sid,
            at_hash: at_hash(signer.alg, access_token),
            amr: id.amr,
            acr: id.acr,
        };
        Ok(signer.sign_id_token(&claims))
    }
}
