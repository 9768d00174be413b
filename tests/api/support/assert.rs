//! Assertions shared by the suite: the wire shapes of errors, and JWT parts.

use reqwest::Response;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Asserts an RFC 6749 §5.2 error response and returns its body.
pub async fn assert_oauth_error(resp: Response, status: u16, error: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_no_store_json(resp.headers(), "an OAuth error");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "body: {body}");
    body
}

/// Asserts the headers of every `/token`-style answer (RFC 6749 §5.1): a JSON body that
/// no cache keeps. `what` names the case in a failure.
pub fn assert_no_store_json(h: &HeaderMap, what: &str) {
    assert_eq!(h["content-type"], "application/json", "{what}");
    assert_eq!(h["cache-control"], "no-store", "{what}");
    assert_eq!(h["pragma"], "no-cache", "{what}");
}

/// Decodes a JWT's header and claims without verifying (for assertions).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

/// The `WWW-Authenticate` header of `r` as text; panics when there is none.
pub fn challenge(r: &Response) -> String {
    r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Asserts an RFC 6750 §3.1 `invalid_token` refusal: 401, a `Bearer realm="tessera",
/// error="invalid_token"` challenge and the same code in the JSON body; `what` names
/// the case in a failure. Returns the body.
pub async fn assert_invalid_token(resp: Response, what: &str) -> Value {
    assert_eq!(resp.status(), 401, "{what}");
    let challenge = challenge(&resp);
    assert!(
        challenge.starts_with(r#"Bearer realm="tessera", error="invalid_token""#),
        "{what}: {challenge}"
    );
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["error"], "invalid_token", "{what}: {body}");
    body
}
