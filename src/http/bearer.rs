//! RFC 6750 bearer tokens: extraction, verification and the error responses.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::Core;
use crate::domain::tokens::AccessClaims;
use crate::store::{self, users::UserRow};

#[derive(Debug)]
pub enum BearerError {
    /// No credentials at all: a bare challenge (RFC 6750 §3.1).
    Missing,
    InvalidToken(&'static str),
    /// Authenticated, but not allowed.
    InsufficientScope(&'static str),
    Internal(store::StoreError),
}

impl From<store::StoreError> for BearerError {
    fn from(e: store::StoreError) -> Self {
        Self::Internal(e)
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="tessera""#.to_string(),
                json!({"error": "invalid_request", "error_description": "bearer token required"}),
            ),
            Self::InvalidToken(d) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    r#"Bearer realm="tessera", error="invalid_token", error_description="{d}""#
                ),
                json!({"error": "invalid_token", "error_description": d}),
            ),
            Self::InsufficientScope(d) => (
                StatusCode::FORBIDDEN,
                format!(
                    r#"Bearer realm="tessera", error="insufficient_scope", error_description="{d}""#
                ),
                json!({"error": "insufficient_scope", "error_description": d}),
            ),
            Self::Internal(e) => {
                tracing::error!(error = %crate::error_chain(&e), "internal error");
                let (status, code) = if store::is_unavailable(&e) {
                    (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
                };
                let body =
                    json!({"error": code, "error_description": "internal error; retry later"});
                return (status, Json(body)).into_response();
            }
        };
        let mut resp = (status, Json(body)).into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).expect("ascii challenge"),
        );
        resp
    }
}

/// The bearer token of a request (RFC 6750 §2.1); the scheme is case-insensitive.
pub fn token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(BearerError::Missing)?;
    let value = value
        .to_str()
        .map_err(|_| BearerError::InvalidToken("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(BearerError::InvalidToken("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = token.trim();
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1)
    let body = token.trim_end_matches('=');
    let b64 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    if body.is_empty() || !body.chars().all(b64) {
        return Err(BearerError::InvalidToken("malformed bearer token"));
    }
    Ok(token)
}

/// A verified access token.
pub struct Caller {
    pub claims: AccessClaims,
}

/// Verifies signature, `typ`, issuer and expiry.
pub fn verify(core: &Core, headers: &HeaderMap) -> Result<Caller, BearerError> {
    let token = token(headers)?;
    let claims = core
        .keys
        .current()
        .verify::<AccessClaims>(token, &core.cfg.issuer)
        .map_err(|_| BearerError::InvalidToken("the access token is invalid or expired"))?;
    Ok(Caller { claims })
}

/// A user token whose session is live and whose user is enabled; returns the user as it is now.
pub async fn live_user(core: &Core, caller: &Caller) -> Result<UserRow, BearerError> {
    let sid = caller
        .claims
        .sid
        .as_deref()
        .ok_or(BearerError::InvalidToken("not a user token"))?;
    let (family, user) = tokio::try_join!(
        store::sessions::family(&core.db.read, sid),
        store::users::by_id(&core.db.read, &caller.claims.sub),
    )?;
    match (family, user) {
        (Some(f), Some(u)) if f.revoked_at.is_none() && !u.disabled && f.user_id == u.id => Ok(u),
        _ => Err(BearerError::InvalidToken("the session was revoked")),
    }
}
