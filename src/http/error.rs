//! How errors go on the wire: [`HttpError`] is the one error type of the HTTP
//! surface. Every status, RFC body, `WWW-Authenticate` challenge and `Retry-After`
//! that tessera answers with is built here.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_proto::ErrorBody;

use crate::domain::queries::StorageError;
use crate::error::{Cause, OAuthError, log_internal};

/// The client-authentication challenge (RFC 6749 §5.2, `invalid_client`).
pub const BASIC_CHALLENGE: &str = r#"Basic realm="tessera", charset="UTF-8""#;
/// The bare bearer challenge (RFC 6750 §3: no credentials, no error code).
const BEARER_CHALLENGE: &str = r#"Bearer realm="tessera""#;

/// Adds RFC 6749 §5.1's anti-caching headers.
pub fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// The surface an internal error is answered on: each keeps the body its
/// clients already know (RFC 6749 bare codes, RFC 6750, the admin JSON shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/token`, `/introspect`, `/revoke`: `{"error": code}`, no description.
    OAuth,
    /// Bearer endpoints (`/userinfo`, `/events`, the admin check).
    Bearer,
    /// Everything else (the admin API).
    Admin,
}

/// An error response: status, `{"error", "error_description"}` body and headers.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    body: Body,
    challenge: Option<HeaderValue>,
    retry_after: Option<u64>,
    no_store: bool,
}

/// The one JSON error shape: the protocol's [`ErrorBody`], and `next_after` on the feed's 410.
#[derive(Debug, Serialize)]
struct Body {
    #[serde(flatten)]
    error: ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

impl HttpError {
    /// A status, an error code and a description.
    pub fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::bare(status, error).described(description)
    }

    fn bare(status: StatusCode, error: &'static str) -> Self {
        Self {
            status,
            body: Body {
                error: ErrorBody {
                    error,
                    error_description: None,
                },
                next_after: None,
            },
            challenge: None,
            retry_after: None,
            no_store: false,
        }
    }

    fn described(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.body.error.error_description = Some(description.into());
        self
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 with a bare challenge: no credentials at all (RFC 6750 §3.1).
    pub fn bearer_required() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "bearer token required",
        );
        e.challenge = Some(HeaderValue::from_static(BEARER_CHALLENGE));
        e
    }

    /// 401 `invalid_token` (RFC 6750 §3.1), challenge included.
    pub fn invalid_token(description: &'static str) -> Self {
        Self::bearer(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    /// 403 `insufficient_scope` (RFC 6750 §3.1): authenticated, but not allowed.
    pub fn insufficient_scope(description: &'static str) -> Self {
        Self::bearer(StatusCode::FORBIDDEN, "insufficient_scope", description)
    }

    fn bearer(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        let challenge = format!(
            r#"Bearer realm="tessera", error="{error}", error_description="{description}""#
        );
        let mut e = Self::new(status, error, description);
        e.challenge = Some(
            HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static(BEARER_CHALLENGE)),
        );
        e
    }

    /// An internal failure: logged in full, answered 503 when the database is
    /// unavailable and 500 otherwise, with the body of `surface`.
    pub fn internal(surface: Surface, cause: &(dyn std::error::Error + 'static)) -> Self {
        let unavailable = log_internal(cause) == Cause::Unavailable;
        let (status, code) = if unavailable {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
        };
        let e = Self::bare(status, code);
        match (surface, unavailable) {
            (Surface::OAuth, _) => e.uncached(),
            (Surface::Bearer, _) => e.described("internal error; retry later"),
            (Surface::Admin, true) => e.described("the database is unavailable; retry"),
            (Surface::Admin, false) => e.described("internal error"),
        }
    }

    /// Adds `Retry-After`, in seconds.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds the event id to resume from (the feed's 410).
    pub fn next_after(mut self, id: i64) -> Self {
        self.body.next_after = Some(id);
        self
    }

    /// Adds RFC 6749 §5.1's anti-caching headers (every OAuth endpoint's errors).
    pub fn uncached(mut self) -> Self {
        self.no_store = true;
        self
    }
}

/// The wire code of each domain error (`error` in the body, the metrics' label).
impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) | Self::AccountChanged => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::Throttled(_) => "slow_down",
            Self::Busy { .. } => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }
}

impl From<OAuthError> for HttpError {
    fn from(e: OAuthError) -> Self {
        let status = StatusCode::BAD_REQUEST;
        let code = e.code();
        let e = match e {
            OAuthError::InvalidRequest(d) | OAuthError::InvalidScope(d) => {
                Self::new(status, code, d)
            }
            OAuthError::InvalidGrant(d) | OAuthError::UnauthorizedClient(d) => {
                Self::new(status, code, d)
            }
            OAuthError::InvalidClient => {
                let mut e = Self::new(
                    StatusCode::UNAUTHORIZED,
                    code,
                    "client authentication failed",
                );
                e.challenge = Some(HeaderValue::from_static(BASIC_CHALLENGE));
                e
            }
            OAuthError::AccountChanged => Self::new(
                status,
                code,
                "the account changed during sign-in; sign in again",
            ),
            OAuthError::UnsupportedGrantType => Self::bare(status, code),
            OAuthError::InvalidTarget => {
                Self::new(status, code, "resource not allowed for this client")
            }
            OAuthError::Throttled(t) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, code, t.description())
                    .retry_after(t.retry_after)
            }
            OAuthError::Busy { retry_after } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                "too many sign-ins in progress; retry later",
            )
            .retry_after(retry_after),
            OAuthError::Internal(cause) => Self::internal(Surface::OAuth, cause.as_ref()),
        };
        e.uncached()
    }
}

/// A storage failure reaching the HTTP surface outside the OAuth and bearer
/// paths: the admin JSON shape.
impl From<StorageError> for HttpError {
    fn from(e: StorageError) -> Self {
        Self::internal(Surface::Admin, &e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if let Some(challenge) = self.challenge {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.no_store {
            resp = no_store(resp);
        }
        resp
    }
}

impl From<super::form::BodyError> for HttpError {
    fn from(e: super::form::BodyError) -> Self {
        Self::new(e.status(), "invalid_request", e.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: HttpError) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = e.into_response();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 4096).await.expect("body");
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).expect("utf-8"),
        )
    }

    /// The bytes the hand-built `json!` bodies had (serde_json sorts members).
    #[tokio::test]
    async fn bodies_keep_their_bytes() {
        let (status, headers, text) =
            body(HttpError::invalid_token("the session was revoked")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            text,
            r#"{"error":"invalid_token","error_description":"the session was revoked"}"#
        );
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            r#"Bearer realm="tessera", error="invalid_token", error_description="the session was revoked""#
        );
        let (_, headers, text) = body(OAuthError::UnsupportedGrantType.into()).await;
        assert_eq!(text, r#"{"error":"unsupported_grant_type"}"#);
        assert_eq!(headers[header::PRAGMA], "no-cache");
        let throttled = crate::domain::throttle::Throttled {
            retry_after: 7,
            why: crate::domain::throttle::Why::Username,
        };
        let (status, headers, text) = body(OAuthError::Throttled(throttled).into()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "7");
        assert!(
            text.contains("too many failed sign-ins for this username"),
            "{text}"
        );
        let gone = HttpError::new(StatusCode::GONE, "resync_required", "x").next_after(3);
        assert_eq!(
            body(gone).await.2,
            r#"{"error":"resync_required","error_description":"x","next_after":3}"#
        );
    }
}
