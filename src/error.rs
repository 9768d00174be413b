//! The errors the domain's OAuth operations (grants, codes, rotation) report, in
//! RFC 6749 §5.2's terms, and the logging of internal failures. Nothing here knows
//! HTTP: statuses, wire codes and bodies are `http::error`'s.

use crate::store::StoreError;

/// Why an OAuth operation failed, one variant per RFC 6749 §5.2 outcome. Its wire
/// code, status and body (`tessera_proto::ErrorBody`) live in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A malformed or incomplete request; the text says what to fix.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (always 401 with a `Basic` challenge).
    #[error("invalid_client")]
    InvalidClient,
    /// Refused by a throttle (which one, and for how long: `Retry-After`).
    #[error("slow_down")]
    Throttled(crate::domain::throttle::Throttled),
    /// The grant (code, refresh token, credentials) is invalid, expired or revoked.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// The password was right, but the user changed (password, disable, roles) while
    /// it was being checked: no session; the app signs in again. An `invalid_grant`
    /// on the wire, but no failed guess for the throttle.
    #[error("invalid_grant: the account changed during sign-in")]
    AccountChanged,
    /// The client may not use this grant type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// A `grant_type` tessera does not implement.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// A requested scope the client may not have.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// RFC 8707 §2: the requested resource is not one this client may target.
    #[error("invalid_target")]
    InvalidTarget,
    /// The password queue is full (RFC 6749 §4.1.2.1's `temporarily_unavailable`).
    #[error("temporarily_unavailable")]
    Busy {
        /// Seconds, for `Retry-After`.
        retry_after: u64,
    },
    /// A fault of ours (database, crypto): logged, answered 500 or 503 without the cause.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl OAuthError {
    /// An `invalid_request` with this description.
    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
}

impl From<crate::domain::passwords::Busy> for OAuthError {
    fn from(e: crate::domain::passwords::Busy) -> Self {
        Self::Busy {
            retry_after: e.retry_after,
        }
    }
}

impl From<crate::domain::throttle::Throttled> for OAuthError {
    fn from(t: crate::domain::throttle::Throttled) -> Self {
        Self::Throttled(t)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(Box::new(StoreError::Db(e)))
    }
}

/// What an internal failure is, for the status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The database is unreachable or overloaded: 503, the caller retries.
    Unavailable,
    /// Anything else: 500.
    Fault,
}

/// Logs an internal failure in full (the error chain, inside the request's span)
/// and says whether it is the database being unavailable. The one place that does.
pub fn log_internal(e: &(dyn std::error::Error + 'static)) -> Cause {
    tracing::error!(error = %crate::error_chain(e), "internal error");
    if crate::store::is_unavailable(e) {
        Cause::Unavailable
    } else {
        Cause::Fault
    }
}
