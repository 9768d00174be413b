//! Strict `application/x-www-form-urlencoded` parsing and client authentication
//! (RFC 6749 §2.3.1, §3.2). Malformed input becomes `invalid_request`, never a 5xx.
//! Hand-written on purpose (not axum's `Form`): a repeated parameter, bad percent-encoding
//! or a credential in the query must each be `invalid_request` (RFC 6749 §3.1), not a rejection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;

use super::Peer;
use super::error::HttpError;

use crate::domain::clients::{AuthError, Client, Credentials};
use crate::domain::signin::SignIn;
use crate::error::OAuthError;
use crate::metrics::Metrics;

/// Form bodies beyond this answer 413.
pub const FORM_LIMIT: usize = 16 * 1024;

/// Parameters of a form, each present at most once. Empty values count as
/// omitted (RFC 6749 §3.1), but a repeated parameter is an error even if empty.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// The value of `name`; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`; `invalid_request` naming it when absent or empty.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
    }

    /// Moves `name` out into a secret type, so the value cannot reach a log through
    /// `Debug`; `None` when absent or empty.
    pub fn take_secret(&mut self, name: &str) -> Option<SecretString> {
        self.0
            .remove(name)
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
    }

    /// Whether `name` was sent at all, even empty.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Why a form request was refused: before parsing (the body) or by the protocol.
#[derive(Debug)]
pub enum FormError {
    /// The body could not be read: answered with its own status (413, 400, 408), not
    /// an OAuth error.
    Body(BodyError),
    /// An OAuth error to answer: a wrong content type, a malformed form, a protocol
    /// rule broken, a failed client authentication.
    Invalid(OAuthError),
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Beyond the limit: 413.
    TooLarge,
    /// The connection ended before `Content-Length` bytes arrived: 400.
    Incomplete,
    /// The client stalled: 408 (the client's fault, not the server's 503).
    TimedOut,
}

impl BodyError {
    /// The status this error answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Incomplete => StatusCode::BAD_REQUEST,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The error text shown to the client.
    pub fn description(self) -> &'static str {
        match self {
            Self::TooLarge => "request body too large",
            Self::Incomplete => "request body incomplete",
            Self::TimedOut => "request body not received in time",
        }
    }
}

/// Reads a whole body within `limit` bytes and `timeout` (half the request timeout,
/// so a stalled upload is answered before the server-side timeout would blame us).
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            if e.into_inner().is::<http_body_util::LengthLimitError>() {
                Err(BodyError::TooLarge)
            } else {
                Err(BodyError::Incomplete)
            }
        }
    }
}

/// Reads and parses a form body, enforcing the size limit and the content type.
pub async fn read_form(
    headers: &HeaderMap,
    body: Body,
    timeout: Duration,
) -> Result<Params, FormError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(FormError::Invalid(OAuthError::invalid_request(
            "content type must be application/x-www-form-urlencoded",
        )));
    }
    let bytes = read_body(body, FORM_LIMIT, timeout)
        .await
        .map_err(FormError::Body)?;
    parse(&bytes).map_err(FormError::Invalid)
}

/// A form request from an authenticated client: the extractor of `/token`,
/// `/revoke` and `/introspect`. Refusals are counted in the metrics by endpoint.
pub struct ClientForm {
    /// The form's parameters, less `client_secret` (taken out as a secret).
    pub params: Params,
    /// The client that authenticated (or named itself, if public).
    pub client: Arc<Client>,
    /// The caller's address (see [`super::Peer`]): failed authentications are
    /// throttled per client id and address.
    pub peer: IpAddr,
}

impl<S: Send + Sync> FromRequest<S> for ClientForm
where
    SignIn: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let signin = SignIn::from_ref(state);
        let (parts, body) = req.into_parts();
        let Peer(peer) = Peer::of(&parts, &signin.cfg.trusted_proxies);
        match authenticated(&signin, peer, &parts.uri, &parts.headers, body).await {
            Ok((params, client)) => Ok(Self {
                params,
                client,
                peer,
            }),
            Err(e) => Err(e
                .counted(&signin.metrics, parts.uri.path().trim_start_matches('/'))
                .into_response()),
        }
    }
}

/// Failed client authentications are counted per (registered client id, source
/// address) and per address, so guessing is throttled without letting anyone lock
/// a client out from elsewhere, and unknown client ids take no entry of their own.
async fn authenticated(
    signin: &SignIn,
    peer: IpAddr,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Params, Arc<Client>), FormError> {
    reject_credentials_in_query(uri).map_err(FormError::Invalid)?;
    let mut params = read_form(headers, body, signin.cfg.request_timeout / 2).await?;
    let creds = client_credentials(headers, &mut params).map_err(FormError::Invalid)?;
    let id = creds.client_id();
    let registered = signin
        .clients
        .get(&signin.db, id)
        .await
        .map_err(|e| FormError::Invalid(e.into()))?
        .is_some();
    // Reserved before the secret is checked, so racing requests cannot exceed the
    // limit; given back (dropped) unless the authentication fails.
    let attempt = signin
        .client_attempt(id, registered, peer)
        .await
        .map_err(|t| FormError::Invalid(t.into()))?;
    match signin.clients.authenticate(&signin.db, &creds).await {
        Ok(client) => Ok((params, client)),
        Err(AuthError::Failed) => {
            attempt.failed(signin.clock.instant());
            Err(FormError::Invalid(OAuthError::InvalidClient))
        }
        Err(AuthError::Store(e)) => Err(FormError::Invalid(e.into())),
    }
}

/// Identifiers (`client_id`, `username`) never hold control characters: no
/// account can have one, and a NUL would reach the database (PostgreSQL
/// refuses it in text with an error, which must not become a 500).
pub fn require_identifier(name: &str, value: &str) -> Result<(), OAuthError> {
    if value.chars().any(char::is_control) {
        return Err(OAuthError::invalid_request(format!(
            "`{name}` must not contain control characters"
        )));
    }
    Ok(())
}

/// Credentials never travel in the URL (RFC 6749 §2.3.1, §3.2).
fn reject_credentials_in_query(uri: &Uri) -> Result<(), OAuthError> {
    if let Some(q) = uri.query() {
        let params = parse(q.as_bytes())
            .map_err(|_| OAuthError::invalid_request("malformed query string"))?;
        for name in ["client_secret", "password", "refresh_token", "token"] {
            if params.contains(name) {
                return Err(OAuthError::invalid_request(format!(
                    "`{name}` must not be sent in the query string"
                )));
            }
        }
    }
    Ok(())
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        match self {
            Self::Body(e) => HttpError::from(e).uncached().into_response(),
            Self::Invalid(e) => e.into_response(),
        }
    }
}

impl FormError {
    /// Counts the error in the metrics (by endpoint and RFC 6749 code) and passes it on.
    pub fn counted(self, metrics: &Metrics, endpoint: &str) -> Self {
        let code = match &self {
            Self::Body(BodyError::TooLarge) => "too_large",
            Self::Body(_) => "invalid_request",
            Self::Invalid(e) => e.code(),
        };
        metrics.oauth_error(endpoint, code);
        if code == "slow_down" {
            metrics.throttled(endpoint);
        }
        self
    }
}

impl From<OAuthError> for FormError {
    fn from(e: OAuthError) -> Self {
        Self::Invalid(e)
    }
}

/// Parses a form-urlencoded body (or query string) strictly: bad encoding or a repeated
/// parameter is `invalid_request`.
pub fn parse(body: &[u8]) -> Result<Params, OAuthError> {
    let mut out = HashMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name =
            decode(name).ok_or_else(|| OAuthError::invalid_request("malformed form encoding"))?;
        let value =
            decode(value).ok_or_else(|| OAuthError::invalid_request("malformed form encoding"))?;
        if out.insert(name.clone(), value).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{name}` is repeated"
            )));
        }
    }
    Ok(Params(out))
}

/// Strict form-urldecoding: `+` is a space, `%XX` must be valid hex, the result valid UTF-8.
pub fn decode(input: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3)?;
                let hi = (hex[0] as char).to_digit(16)?;
                let lo = (hex[1] as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The client's credentials from the `Authorization: Basic` header or the body.
/// Both at once is `invalid_request` (RFC 6749 §2.3: one method per request).
pub fn client_credentials(
    headers: &HeaderMap,
    params: &mut Params,
) -> Result<Credentials, OAuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        if params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let (id, secret) = parse_basic(value.as_bytes()).ok_or(OAuthError::InvalidClient)?;
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        require_identifier("client_id", &id)?;
        return Ok(Credentials::Secret {
            id,
            secret: SecretString::from(secret),
        });
    }
    let id = params
        .get("client_id")
        .ok_or(OAuthError::InvalidClient)?
        .to_string();
    require_identifier("client_id", &id)?;
    match params.take_secret("client_secret") {
        Some(secret) => Ok(Credentials::Secret { id, secret }),
        // A present but empty secret is an attempt to authenticate, never a public client.
        None if params.contains("client_secret") => Ok(Credentials::Secret {
            id,
            secret: SecretString::from(String::new()),
        }),
        None => Ok(Credentials::PublicId(id)),
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`: decode, split at the first
/// colon, then form-urldecode both halves (RFC 6749 §2.3.1).
pub fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let colon = raw.iter().position(|b| *b == b':')?;
    let id = decode(&raw[..colon])?;
    let secret = decode(&raw[colon + 1..])?;
    (!id.is_empty()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let header = format!("Basic {}", STANDARD.encode("a+b%3Ac:p%25w"));
        assert_eq!(
            parse_basic(header.as_bytes()),
            Some(("a b:c".into(), "p%w".into()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
        assert_eq!(
            parse_basic(format!("Basic {}", STANDARD.encode("nocolon")).as_bytes()),
            None
        );
    }

    #[test]
    fn form_parsing_is_strict() {
        let p = parse(b"grant_type=password&scope=&username=a%20b+c").unwrap();
        assert_eq!(p.get("grant_type"), Some("password"));
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("username"), Some("a b c"));
        assert!(parse(b"a=1&a=2").is_err());
        assert!(parse(b"a=%zz").is_err());
        assert!(parse(b"a=%4").is_err());
        assert!(parse(b"a=%ff").is_err());
    }
}
