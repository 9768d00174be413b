//! Errors at the protocol boundary. The OAuth endpoints speak RFC 6749 §5.2.

use crate::store::StoreError;

/// An RFC 6749 §5.2 error. Its wire body is `tessera_proto::ErrorBody`, built in `http::error`.
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

/// A storage failure reaching the HTTP surface outside the OAuth and bearer
/// paths: the admin JSON shape. (Here, so `http` names nothing of `store`.)
impl From<StoreError> for crate::http::error::HttpError {
    fn from(e: StoreError) -> Self {
        Self::internal(crate::http::error::Surface::Admin, &e)
    }
}
