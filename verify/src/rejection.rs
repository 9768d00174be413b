//! Why a request is refused, and the RFC 6750 §3 answer a client can act on.

use http::{HeaderValue, Response, StatusCode, header};
use tessera_proto::ErrorBody;

/// Why a token was refused. [`Rejection::description`] is the `error_description`,
/// worded so that a client knows whether to refresh or to sign in again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token: 401 without `error` (RFC 6750 §3.1).
    Missing,
    /// Malformed, badly signed, wrong `typ`/`iss`/`aud`...: the reason says which.
    Invalid(&'static str),
    /// `exp` is past (beyond the leeway).
    Expired,
    /// The token's `ver` is older than the user's: its roles changed.
    RolesChanged,
    /// The token's session (`sid`) was revoked.
    SessionRevoked,
    /// The token's user has been disabled.
    UserDisabled,
    /// The token was signed by a key the issuer has withdrawn.
    KeyRevoked,
    /// The issuer's introspection says the token is no longer active.
    Inactive,
    /// The event feed has been out of reach for longer than `max_staleness` (and the
    /// policy is to refuse, or introspection failed too).
    StateUnknown,
    /// 403: the token lacks this role.
    MissingRole(String),
    /// 403: the token lacks this scope.
    MissingScope(String),
    /// 401 `insufficient_user_authentication` (RFC 9470): the user did not sign in with
    /// this method (`amr`); sign in again with it.
    MissingAmr(String),
}

impl Rejection {
    /// 401, or 403 for a missing role or scope (RFC 6750 §3.1).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingRole(_) | Self::MissingScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 `error` code; `None` when no credentials were presented.
    pub fn error(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::MissingRole(_) | Self::MissingScope(_) => Some("insufficient_scope"),
            Self::MissingAmr(_) => Some("insufficient_user_authentication"),
            _ => Some("invalid_token"),
        }
    }

    /// The `error_description`; empty when no token was presented.
    pub fn description(&self) -> String {
        match self {
            Self::Missing => String::new(),
            Self::Invalid(why) => format!("invalid token: {why}"),
            Self::Expired => "expired".into(),
            Self::RolesChanged => "roles changed: refresh".into(),
            Self::SessionRevoked => "session revoked: sign in again".into(),
            Self::UserDisabled => "user disabled".into(),
            Self::KeyRevoked => "signing key revoked: refresh".into(),
            Self::Inactive => "token no longer active: sign in again".into(),
            Self::StateUnknown => "authorization state unknown: try again later".into(),
            Self::MissingRole(role) => format!("requires role {role}"),
            Self::MissingScope(scope) => format!("requires scope {scope}"),
            Self::MissingAmr(method) => {
                format!("requires signing in with {method}: sign in again")
            }
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3).
    pub fn www_authenticate(&self, realm: &str) -> String {
        let mut v = format!("Bearer realm=\"{}\"", quoted(realm));
        if let Some(error) = self.error() {
            v.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                quoted(&self.description())
            ));
        }
        if let Self::MissingScope(scope) = self {
            v.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        v
    }

    /// The whole answer: status, `WWW-Authenticate`, and the same error as JSON.
    pub fn response<B: From<String>>(&self, realm: &str) -> Response<B> {
        let body = match self.error() {
            None => String::new(),
            Some(error) => serde_json::to_string(&ErrorBody {
                error,
                error_description: Some(self.description().into()),
            })
            .expect("an error body serialises"),
        };
        let mut resp = Response::new(B::from(body));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.www_authenticate(realm)) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if self.error().is_some() {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no bearer token"),
            other => f.write_str(&other.description()),
        }
    }
}

impl std::error::Error for Rejection {}

/// Keeps a value inside an RFC 6750 quoted string: printable ASCII without `"` or `\`.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '?',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// The bearer token of an `Authorization` header value (RFC 6750 §2.1).
pub(crate) fn bearer(value: Option<&HeaderValue>) -> Result<&str, Rejection> {
    let Some(value) = value else {
        return Err(Rejection::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| Rejection::Invalid("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Rejection::Invalid("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Rejection::Invalid("malformed Authorization header"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_follow_rfc_6750() {
        assert_eq!(
            Rejection::Missing.www_authenticate("api"),
            "Bearer realm=\"api\""
        );
        assert_eq!(
            Rejection::RolesChanged.www_authenticate("api"),
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"roles changed: refresh\""
        );
        let r = Rejection::MissingScope("a\"b".into());
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.www_authenticate("api").ends_with("scope=\"a?b\""));
        let resp: Response<String> = Rejection::SessionRevoked.response("api");
        assert_eq!(resp.status(), 401);
        assert!(resp.body().contains("session revoked: sign in again"));
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer(Some(&h("Bearer abc"))), Ok("abc"));
        assert_eq!(bearer(Some(&h("bearer abc"))), Ok("abc"));
        assert_eq!(bearer(None), Err(Rejection::Missing));
        assert_eq!(bearer(Some(&h("Basic abc"))), Err(Rejection::Missing));
        assert!(matches!(
            bearer(Some(&h("Bearer "))),
            Err(Rejection::Invalid(_))
        ));
    }
}
