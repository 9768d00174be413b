//! How errors go on the wire.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::OAuthError;

pub const BASIC_CHALLENGE: &str = r#"Basic realm="tessera", charset="UTF-8""#;

/// Adds RFC 6749 §5.1's anti-caching headers.
pub fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, code, description): (StatusCode, &str, Option<String>) = match &self {
            Self::InvalidRequest(d) => {
                (StatusCode::BAD_REQUEST, "invalid_request", Some(d.clone()))
            }
            Self::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                Some("client authentication failed".into()),
            ),
            Self::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", Some((*d).into())),
            Self::AccountChanged => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Some("the account changed during sign-in; sign in again".into()),
            ),
            Self::UnauthorizedClient(d) => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                Some((*d).into()),
            ),
            Self::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
            Self::InvalidScope(d) => (StatusCode::BAD_REQUEST, "invalid_scope", Some(d.clone())),
            Self::InvalidTarget => (
                StatusCode::BAD_REQUEST,
                "invalid_target",
                Some("resource not allowed for this client".into()),
            ),
            Self::Throttled { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                Some("too many failed attempts; retry later".into()),
            ),
            Self::Busy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                Some("too many sign-ins in progress; retry later".into()),
            ),
            Self::Internal(e) => {
                tracing::error!(error = %crate::error_chain(e.as_ref()), "internal error");
                if crate::store::is_unavailable(e.as_ref()) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        None,
                    )
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
                }
            }
        };
        let body = match description {
            Some(d) => json!({"error": code, "error_description": d}),
            None => json!({"error": code}),
        };
        let mut resp = no_store((status, Json(body)).into_response());
        match self {
            Self::InvalidClient => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BASIC_CHALLENGE),
                );
            }
            Self::Throttled { retry_after } | Self::Busy { retry_after } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        resp
    }
}
