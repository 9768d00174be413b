//! The authorization code grant (RFC 6749 §4.1, PKCE RFC 7636): what happens when a
//! code is issued, exchanged, or replayed. The ID token it issues is minted by
//! [`Tokens::id_token`](super::tokens::Tokens::id_token).

use std::sync::Arc;
use std::time::Duration;

use super::clients::{Client, GrantType};
use super::factors::amr;
use super::grants::{grant_audience, token_roles};
use super::keys::KeySet;
use super::scopes;
use super::sessions;
use super::signin::SignIn;
use super::tokens::{IdToken, Subject, TokenResponse};
use crate::crypto::{self, b64, ct_eq, sha256};
use crate::error::OAuthError;
use crate::store::{self, codes::CodeRow};

/// The revocation reason when an authorization code is presented twice (RFC 6749 §4.1.2: revoke
/// what it issued).
pub const REASON_CODE_REUSE: &str = "authorization_code_reuse";

/// The longest a code lives (RFC 6749 §4.1.2 recommends at most ten minutes; we keep 60 s).
pub const MAX_CODE_TTL: u64 = 60;

const INVALID: OAuthError =
    OAuthError::InvalidGrant("the authorization code is invalid, expired or already used");

/// What a code is bound to when it is issued.
pub struct CodeGrant<'a> {
    /// The client the code was issued to; only it may redeem it.
    pub client_id: &'a str,
    /// The signed-in user.
    pub user_id: &'a str,
    /// The user's permission version at consent; a change since refuses the code.
    pub authz_version: i64,
    /// Must be repeated exactly at redemption (RFC 6749 §4.1.3).
    pub redirect_uri: &'a str,
    /// The PKCE S256 challenge (RFC 7636).
    pub code_challenge: &'a str,
    /// The scopes granted.
    pub scope: &'a str,
    /// Echoed into the ID token (OpenID Connect Core §3.1.2.1).
    pub nonce: Option<&'a str>,
    /// When the user signed in, for the ID token's `auth_time`.
    pub auth_time: i64,
    /// How the user signed in (RFC 8176 values, space-separated).
    pub amr: &'a str,
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]` (a verifier, or an S256 challenge's
/// alphabet).
pub fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` is the one whose S256 challenge the code holds (RFC 7636 §4.6),
/// compared in constant time.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    is_pkce_string(verifier)
        && ct_eq(
            b64(&sha256(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

/// When a code issued at `now` (Unix seconds) expires: it lives `ttl`, whole seconds.
fn expires_at(now: i64, ttl: Duration) -> i64 {
    now + ttl.as_secs() as i64
}

/// Whether a code that expires at `expires_at` is refused at `now`: from that second on.
fn expired(expires_at: i64, now: i64) -> bool {
    now >= expires_at
}

impl SignIn {
    /// Issues a code for a completed authorization request; returns the code.
    pub async fn issue_code(&self, grant: CodeGrant<'_>) -> Result<String, OAuthError> {
        let code = crypto::random_token();
        let now = self.clock.now();
        let row = CodeRow {
            hash: sha256(code.as_bytes()).to_vec(),
            client_id: grant.client_id.into(),
            user_id: grant.user_id.into(),
            authz_version: grant.authz_version,
            redirect_uri: grant.redirect_uri.into(),
            code_challenge: grant.code_challenge.into(),
            scope: grant.scope.into(),
            nonce: grant.nonce.map(str::to_string),
            auth_time: grant.auth_time,
            created_at: now,
            expires_at: expires_at(now, self.cfg.authorization_code_ttl),
            consumed_at: None,
            family_id: None,
            amr: grant.amr.into(),
        };
        store::codes::insert(self.db.writer(), &row).await?;
        Ok(code)
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): starts a
    /// refresh family exactly as the password grant does.
    pub async fn authorization_code_grant(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, OAuthError> {
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the authorization_code grant",
            ));
        }
        let hash = sha256(code.as_bytes());
        let now = self.clock.now();
        let Some(row) = store::codes::by_hash(&self.db.read, &hash).await? else {
            return Err(INVALID);
        };
        // Another client's code is refused without touching it, as for refresh tokens.
        if row.client_id != client.id {
            return Err(INVALID);
        }
        if row.consumed_at.is_some() {
            // Only a replay that proves it holds the verifier is the code's reuse: anyone
            // who saw a public client's code could otherwise revoke its session.
            if row.redirect_uri == redirect_uri && verifier_matches(verifier, &row.code_challenge) {
                return Err(self.code_replayed(&hash).await);
            }
            return Err(INVALID);
        }
        if expired(row.expires_at, now) {
            return Err(INVALID);
        }
        if row.redirect_uri != redirect_uri {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !is_pkce_string(verifier) {
            return Err(OAuthError::invalid_request(
                "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
            ));
        }
        if !verifier_matches(verifier, &row.code_challenge) {
            return Err(OAuthError::InvalidGrant(
                "code_verifier does not match the code_challenge",
            ));
        }
        if !store::codes::consume(self.db.writer(), &hash, now).await? {
            return Err(self.code_replayed(&hash).await);
        }
        let audience = grant_audience(&self.cfg.issuer, None, &client.audiences)?;
        let started = self
            .start_session(
                &row.user_id,
                row.authz_version,
                &client.id,
                &row.scope,
                &audience,
                &row.amr,
            )
            .await?;
        let (sid, refresh_token) = started.ok_or(OAuthError::AccountChanged)?;
        if store::codes::set_family(self.db.writer(), &hash, &sid).await? {
            // Replayed between the exchange and now: the replay could not revoke it.
            self.revoke_code_family(&sid).await?;
            return Err(INVALID);
        }
        let user = store::users::by_id(&self.db.read, &row.user_id)
            .await?
            .ok_or(OAuthError::AccountChanged)?;
        let subject = Subject {
            sub: &row.user_id,
            roles: token_roles(client, &row.scope, user.roles()?),
            sid: Some(&sid),
            ver: Some(row.authz_version),
            amr: Some(amr::methods(&row.amr)),
        };
        // A third-party client gets a refresh token only with `offline_access` (OpenID Connect
        // Core §11); the family still backs the access token's `sid`.
        let refresh_token = (client.allows(GrantType::RefreshToken)
            && client.receives(&row.scope, scopes::OFFLINE_ACCESS))
        .then_some(refresh_token);
        let mut resp =
            self.tokens
                .issue(&client.id, subject, &row.scope, audience, refresh_token)?;
        if row.scope.split(' ').any(|s| s == scopes::OPENID) {
            let keys = self.id_token_keys(client).await?;
            let id = IdToken {
                sub: &row.user_id,
                client_id: &client.id,
                auth_time: row.auth_time,
                nonce: row.nonce.as_deref(),
                sid: &sid,
                amr: amr::methods(&row.amr),
                acr: amr::acr(&row.amr),
            };
            let id_token =
                self.tokens
                    .id_token(&keys, client.id_token_alg, id, &resp.access_token)?;
            resp.id_token = Some(id_token);
        }
        Ok(resp)
    }

    /// The key set, with a key for `client`'s ID-token alg: a client registered for RS256
    /// while the RS256 chain was not there yet (or the main chain moved off RS256) has
    /// the chain started now.
    async fn id_token_keys(&self, client: &Client) -> Result<Arc<KeySet>, OAuthError> {
        let keys = self.keys.current();
        if keys.id_token_signer(client.id_token_alg).is_some() {
            return Ok(keys);
        }
        self.signing
            .ensure_rs256_keys()
            .await
            .map_err(|e| OAuthError::Internal(e.into()))?;
        Ok(self.keys.current())
    }

    /// A code presented twice: the family issued from it is revoked (RFC 6749 §4.1.2).
    async fn code_replayed(&self, hash: &[u8]) -> OAuthError {
        let outcome = async {
            let family =
                store::codes::mark_replayed(self.db.writer(), hash, self.clock.now()).await?;
            if let Some(sid) = family {
                self.revoke_code_family(&sid).await?;
            }
            Ok::<_, OAuthError>(())
        }
        .await;
        match outcome {
            Ok(()) => INVALID,
            Err(e) => e,
        }
    }

    async fn revoke_code_family(&self, sid: &str) -> Result<(), OAuthError> {
        let mut tx = self.db.begin().await?;
        let Some(family) = store::sessions::family(&mut tx, sid).await? else {
            return Ok(());
        };
        let revoked =
            sessions::revoke_family(&self.clock, &mut tx, &family, REASON_CODE_REUSE).await?;
        tx.commit().await?;
        if revoked {
            self.events.wake();
            self.metrics.session_revoked(REASON_CODE_REUSE);
            tracing::warn!(sid, "authorization code replayed: its family revoked");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_lives_its_ttl_and_not_a_second_more() {
        let issued = 1_000_000;
        let expires = expires_at(issued, Duration::from_secs(MAX_CODE_TTL));
        assert!(!expired(expires, issued));
        assert!(!expired(expires, issued + MAX_CODE_TTL as i64 - 1));
        assert!(expired(expires, issued + MAX_CODE_TTL as i64));
    }
}
