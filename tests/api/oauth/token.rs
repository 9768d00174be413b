//! `POST /token`: parsing, client authentication, the three grants (CONFORMANCE 1–20, 29–30).

use reqwest::{Response, header};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";
pub(crate) const CHALLENGE: &str = r#"Basic realm="tessera", charset="UTF-8""#;

/// Form-urlencodes one value (RFC 6749 Appendix B): unreserved bytes as is, space as `+`.
pub(crate) fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Authorization: Basic` the way RFC 6749 §2.3.1 says: urlencode both halves, then base64.
pub(crate) fn basic(id: &str, secret: &str) -> String {
    basic_raw(&format!("{}:{}", form_encode(id), form_encode(secret)))
}

pub(crate) fn basic_raw(decoded: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(decoded)
    )
}

pub(crate) async fn post_raw(
    app: &TestApp,
    ctype: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut req = app.http.post(app.url("/token")).body(body);
    if let Some(c) = ctype {
        req = req.header(header::CONTENT_TYPE, c);
    }
    req.send().await.expect("request")
}

pub(crate) async fn post_basic(app: &TestApp, auth: &str, form: &[(&str, &str)]) -> Response {
    app.http
        .post(app.url("/token"))
        .header(header::AUTHORIZATION, auth)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Asserts a 200 token response with RFC 6749 §5.1 headers and returns the body.
pub(crate) async fn assert_token_ok(resp: Response) -> Value {
    let status = resp.status();
    let h = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "body: {body}");
    assert_no_store_json(&h, "a token response");
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
    body
}

pub(crate) fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[tokio::test]
async fn get_token_is_method_not_allowed() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn client_credentials_response_shape_and_claims() {
    let Grants { app, secret, .. } = Grants::start().await;
    let r = post_basic(
        &app,
        &basic("svc", &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let body = assert_token_ok(r).await;
    assert_eq!(
        keys(&body),
        ["access_token", "expires_in", "scope", "token_type"]
    );
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "read write");
    let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["roles"], json!(["svc-role"]));
    assert_eq!(claims["iss"], app.addr);
    assert_eq!(claims["aud"], "https://api.example");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert!(
        claims.get("sid").is_none() && claims.get("ver").is_none(),
        "{claims}"
    );
}

#[tokio::test]
async fn client_credentials_for_a_public_client_is_invalid_client() {
    let Grants { app, .. } = Grants::start().await;
    let r = app
        .token(&[("grant_type", "client_credentials"), ("client_id", "app")])
        .await;
    assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
    let body = assert_oauth_error(r, 401, "invalid_client").await;
    assert_eq!(body["error_description"], "client authentication failed");
}

#[tokio::test]
async fn empty_scope_is_omitted_and_unknown_parameters_are_ignored() {
    let Grants { app, secret, .. } = Grants::start().await;
    let auth = basic("svc", &secret);
    for form in [
        &[("grant_type", "client_credentials"), ("scope", "")][..],
        &[
            ("grant_type", "client_credentials"),
            ("colour", "blue"),
            ("x", ""),
        ][..],
    ] {
        let body = assert_token_ok(post_basic(&app, &auth, form).await).await;
        assert_eq!(body["scope"], "read write", "{form:?}");
    }
    let r = post_basic(
        &app,
        &auth,
        &[("grant_type", "client_credentials"), ("scope", "read")],
    )
    .await;
    assert_eq!(assert_token_ok(r).await["scope"], "read");
}

#[tokio::test]
async fn empty_or_missing_grant_type_is_invalid_request() {
    let Grants { app, secret, .. } = Grants::start().await;
    let auth = basic("svc", &secret);
    let r = post_basic(&app, &auth, &[("grant_type", "")]).await;
    let body = assert_oauth_error(r, 400, "invalid_request").await;
    assert_eq!(body["error_description"], "missing parameter `grant_type`");
    let r = post_basic(&app, &auth, &[("scope", "read")]).await;
    assert_oauth_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let Grants { app, secret, .. } = Grants::start().await;
    let auth = basic("svc", &secret);
    for form in [
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ][..],
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("scope", "write"),
        ][..],
        &[
            ("grant_type", "client_credentials"),
            ("resource", ""),
            ("resource", ""),
        ][..],
    ] {
        let body =
            assert_oauth_error(post_basic(&app, &auth, form).await, 400, "invalid_request").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("repeated"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn credentials_in_the_query_string_are_rejected() {
    let Grants { app, secret, .. } = Grants::start().await;
    for (name, value) in [
        ("client_secret", secret.as_str()),
        ("password", PASSWORD),
        ("refresh_token", "x"),
        ("client_secret", ""),
    ] {
        let url = app.url(&format!("/token?{name}={}", form_encode(value)));
        let r = app
            .http
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", &secret),
            ])
            .send()
            .await
            .unwrap();
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded() {
    let app = TestApp::spawn().await;
    let id = "svc:1+x/y";
    let secret = app
        .client(id, false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    let form = [("grant_type", "client_credentials")];
    let ok = assert_token_ok(post_basic(&app, &basic(id, &secret), &form).await).await;
    assert_eq!(jwt_parts(ok["access_token"].as_str().unwrap()).1["sub"], id);
    // Every character of the secret percent-encoded still decodes to the secret.
    let every: String = secret.bytes().map(|b| format!("%{b:02x}")).collect();
    let auth = basic_raw(&format!("svc%3A1%2Bx%2Fy:{every}"));
    assert_token_ok(post_basic(&app, &auth, &form).await).await;
    // Sent without encoding, `:` splits the id and `+` becomes a space: not this client.
    for raw in [format!("{id}:{secret}"), format!("svc%3A1+x/y:{secret}")] {
        let r = post_basic(&app, &basic_raw(&raw), &form).await;
        assert_oauth_error(r, 401, "invalid_client").await;
    }
}

#[tokio::test]
async fn client_secret_post_is_accepted() {
    let Grants { app, secret, .. } = Grants::start().await;
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", &secret),
        ])
        .await;
    let body = assert_token_ok(r).await;
    assert_eq!(
        jwt_parts(body["access_token"].as_str().unwrap()).1["client_id"],
        "svc"
    );
}

#[tokio::test]
async fn basic_and_a_body_secret_together_are_invalid_request() {
    let Grants { app, secret, .. } = Grants::start().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc"),
        ("client_secret", secret.as_str()),
    ];
    let r = post_basic(&app, &basic("svc", &secret), &form).await;
    assert_oauth_error(r, 400, "invalid_request").await;
    // A body client_id beside Basic must name the same client.
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", "app")];
    let r = post_basic(&app, &basic("svc", &secret), &form).await;
    assert_oauth_error(r, 400, "invalid_request").await;
    form[1].1 = "svc";
    let lowercase_scheme = basic("svc", &secret).replacen("Basic", "basic", 1);
    assert_token_ok(post_basic(&app, &lowercase_scheme, &form).await).await;
}

#[tokio::test]
async fn a_wrong_secret_over_basic_is_401_with_a_challenge() {
    let Grants { app, secret, .. } = Grants::start().await;
    let wrong = format!("{}x", &secret[..secret.len() - 1]);
    let r = post_basic(
        &app,
        &basic("svc", &wrong),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
    let body = assert_oauth_error(r, 401, "invalid_client").await;
    assert_eq!(keys(&body), ["error", "error_description"]);
}

/// Status, headers and body of a failed client authentication: all that an attacker sees.
async fn failure_view(r: Response) -> (u16, Option<String>, Value) {
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, r.json().await.unwrap())
}

#[tokio::test]
async fn a_wrong_secret_and_an_unknown_client_look_the_same() {
    let Grants { app, .. } = Grants::start().await;
    let cc = "client_credentials";
    let wrong = failure_view(
        app.token(&[
            ("grant_type", cc),
            ("client_id", "svc"),
            ("client_secret", "nope"),
        ])
        .await,
    )
    .await;
    let unknown = failure_view(
        app.token(&[
            ("grant_type", cc),
            ("client_id", "ghost"),
            ("client_secret", "nope"),
        ])
        .await,
    )
    .await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.2["error"], "invalid_client");
    assert_eq!(wrong, unknown);
    let wrong_basic =
        failure_view(post_basic(&app, &basic("svc", "nope"), &[("grant_type", cc)]).await).await;
    let unknown_basic =
        failure_view(post_basic(&app, &basic("ghost", "nope"), &[("grant_type", cc)]).await).await;
    assert_eq!(wrong_basic, unknown_basic);
    assert_eq!(wrong_basic, wrong);
}

#[tokio::test]
async fn a_confidential_client_without_a_secret_is_invalid_client() {
    let Grants { app, .. } = Grants::start().await;
    let cc = "client_credentials";
    let missing = app.token(&[("grant_type", cc), ("client_id", "svc")]).await;
    assert_oauth_error(missing, 401, "invalid_client").await;
    let empty = app
        .token(&[
            ("grant_type", cc),
            ("client_id", "svc"),
            ("client_secret", ""),
        ])
        .await;
    assert_oauth_error(empty, 401, "invalid_client").await;
    let basic_empty = post_basic(&app, &basic_raw("svc:"), &[("grant_type", cc)]).await;
    assert_oauth_error(basic_empty, 401, "invalid_client").await;
    let none = app.token(&[("grant_type", cc)]).await;
    assert_oauth_error(none, 401, "invalid_client").await;
}
