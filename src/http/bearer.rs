//! RFC 6750 bearer tokens: extraction and verification. The error responses are
//! [`HttpError`]'s.

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use super::error::{HttpError, Surface};
use crate::domain::clients::Client;
use crate::domain::liveness::{ClientRead, Live, Liveness};
use crate::domain::queries::User;
use crate::domain::tokens::{AccessClaims, Tokens};

/// The bearer token of a request (RFC 6750 §2.1); the scheme is case-insensitive.
pub fn token(headers: &HeaderMap) -> Result<&str, HttpError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(HttpError::bearer_required)?;
    let malformed = || HttpError::invalid_token("malformed Authorization header");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HttpError::bearer_required());
    }
    well_formed(token.trim())
}

/// A token as RFC 6750 §2.1 spells it:
/// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
pub fn well_formed(token: &str) -> Result<&str, HttpError> {
    let body = token.trim_end_matches('=');
    let b64 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    if body.is_empty() || !body.chars().all(b64) {
        return Err(HttpError::invalid_token("malformed bearer token"));
    }
    Ok(token)
}

/// A verified access token.
pub struct Caller {
    /// The token's verified claims.
    pub claims: AccessClaims,
}

/// Verifies signature, `typ`, issuer and expiry.
/// Needs only the token part (keys, clock, issuer).
pub fn verify(tokens: &Tokens, headers: &HeaderMap) -> Result<Caller, HttpError> {
    verify_token(tokens, token(headers)?)
}

/// [`verify`] for a token found elsewhere than the header (a form body, RFC 6750 §2.2).
pub fn verify_token(tokens: &Tokens, token: &str) -> Result<Caller, HttpError> {
    let claims = tokens
        .keys
        .current()
        .verify::<AccessClaims>(token, &tokens.cfg.issuer, tokens.clock.now())
        .map_err(|_| HttpError::invalid_token("the access token is invalid or expired"))?;
    Ok(Caller { claims })
}

/// A user token whose session is live and whose user is enabled; returns the user as it is now.
pub async fn live_user(live: &Live, caller: &Caller) -> Result<User, HttpError> {
    if caller.claims.sid.is_none() {
        return Err(HttpError::invalid_token("not a user token"));
    }
    let live = live
        .liveness(&caller.claims, ClientRead::Cached)
        .await
        .map_err(|e| HttpError::internal(Surface::Bearer, &e))?;
    match live {
        Liveness::User(u) => Ok(u),
        Liveness::SessionRevoked { reason } => Err(HttpError::invalid_token(
            crate::domain::liveness::revoked_description(reason.as_deref()),
        )),
        _ => Err(HttpError::invalid_token("the session was revoked")),
    }
}

/// The client a verified token was issued to; `None` when it is gone.
pub async fn client_of(live: &Live, caller: &Caller) -> Result<Option<Arc<Client>>, HttpError> {
    live.clients
        .get(&live.db, &caller.claims.client_id)
        .await
        .map_err(|e| HttpError::internal(Surface::Bearer, &e))
}
