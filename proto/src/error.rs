//! The error body of the OAuth and bearer endpoints (RFC 6749 §5.2, RFC 6750 §3).

use std::borrow::Cow;

use serde::Serialize;

/// `{"error": ..., "error_description": ...}`: what tessera answers on an error, and what
/// a resource server built on `tessera-verify` answers with a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// The error code (`invalid_request`, `invalid_token`, ...): one of the protocol's
    /// fixed words, so a `&'static str` (an error value stays small).
    pub error: &'static str,
    /// A human-readable explanation; absent where the protocol gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<Cow<'static, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_is_left_out_when_absent() {
        let bare = ErrorBody {
            error: "invalid_client",
            error_description: None,
        };
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"error":"invalid_client"}"#
        );
        let described = ErrorBody {
            error_description: Some("the session was revoked".into()),
            ..bare
        };
        assert_eq!(
            serde_json::to_string(&described).unwrap(),
            r#"{"error":"invalid_client","error_description":"the session was revoked"}"#
        );
    }
}
