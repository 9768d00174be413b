//! `POST /token` grants: which client may use which, scopes, audiences, the password
//! and client_credentials grants (CONFORMANCE 13–20, 30).

use reqwest::Response;
use serde_json::{Value, json};

use crate::oauth::token::{assert_token_ok, basic, keys, post_basic};
use crate::support::*;

#[tokio::test]
async fn unsupported_grant_types() {
    let Grants { app, secret, .. } = Grants::start().await;
    for grant in [
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "PASSWORD",
    ] {
        let r = post_basic(
            &app,
            &basic("svc", &secret),
            &[("grant_type", grant), ("code", "x")],
        )
        .await;
        let body = assert_oauth_error(r, 400, "unsupported_grant_type").await;
        assert_eq!(body, json!({"error": "unsupported_grant_type"}));
    }
}

#[tokio::test]
async fn a_grant_the_client_may_not_use_is_unauthorized_client() {
    let Grants { app, secret, .. } = Grants::start().await;
    let form = [
        ("grant_type", "password"),
        ("username", USER),
        ("password", PASSWORD),
    ];
    let r = post_basic(&app, &basic("svc", &secret), &form).await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
    let r = post_basic(
        &app,
        &basic("svc", &secret),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn a_scope_not_allowed_or_malformed_is_invalid_scope() {
    let Grants { app, secret, .. } = Grants::start().await;
    for scope in ["admin", "read admin", "read\"", "r\\w", " "] {
        let form = [("grant_type", "client_credentials"), ("scope", scope)];
        let r = post_basic(&app, &basic("svc", &secret), &form).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
    let form = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", USER),
        ("password", PASSWORD),
        ("scope", "write admin"),
    ];
    assert_oauth_error(app.token(&form).await, 400, "invalid_scope").await;
}

#[tokio::test]
async fn password_grant_issues_a_user_token_and_a_refresh_token() {
    let Grants { app, sub, .. } = Grants::start().await;
    let form = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", USER),
        ("password", PASSWORD),
    ];
    let body = assert_token_ok(app.token(&form).await).await;
    assert_eq!(
        keys(&body),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    let rt = body["refresh_token"].as_str().unwrap();
    assert!(
        rt.len() >= 43 && !rt.contains('.'),
        "opaque refresh token: {rt}"
    );
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["client_id"], "app");
    assert_eq!(claims["roles"], json!(["reader"]));
    assert_eq!(claims["ver"], 1);
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(claims["scope"], "read write");
    assert_ne!(claims["sub"], "app");
}

/// A password grant through the public client `app`, whatever the outcome.
pub(crate) async fn password_login(app: &TestApp, user: &str, password: &str) -> Response {
    app.token(&[
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", user),
        ("password", password),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_unknown_and_disabled_users_are_invalid_grant() {
    let Grants { app, .. } = Grants::start().await;
    let wrong = assert_oauth_error(
        password_login(&app, USER, "wrong password").await,
        400,
        "invalid_grant",
    )
    .await;
    let unknown = assert_oauth_error(
        password_login(&app, "mallory", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(wrong, unknown);
    let session = assert_token_ok(password_login(&app, USER, PASSWORD).await).await;
    let (code, _, err) = app.cli(&["user", "disable", USER], None);
    assert_eq!(code, 0, "{err}");
    let rt = session["refresh_token"].as_str().unwrap();
    assert_oauth_error(app.refresh("app", rt).await, 400, "invalid_grant").await;
    let disabled = assert_oauth_error(
        password_login(&app, USER, PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(disabled, wrong);
}

#[tokio::test]
async fn missing_password_or_username_is_invalid_request() {
    let Grants { app, .. } = Grants::start().await;
    for form in [
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", USER),
        ][..],
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", USER),
            ("password", ""),
        ][..],
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("password", PASSWORD),
        ][..],
    ] {
        assert_oauth_error(app.token(form).await, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn resource_selects_the_audience_or_is_invalid_target() {
    let app = TestApp::spawn().await;
    let new = tessera::domain::clients::NewClient {
        id: "multi".into(),
        grant_types: vec!["client_credentials".parse().unwrap()],
        audiences: vec!["https://a.example".into(), "https://b.example".into()],
        ..Default::default()
    };
    let secret = app.client_with(new).await.unwrap();
    let auth = basic("multi", &secret);
    let aud = |body: Value| jwt_parts(body["access_token"].as_str().unwrap()).1["aud"].clone();
    let all =
        assert_token_ok(post_basic(&app, &auth, &[("grant_type", "client_credentials")]).await)
            .await;
    assert_eq!(aud(all), json!(["https://a.example", "https://b.example"]));
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", "https://b.example"),
    ];
    let one = assert_token_ok(post_basic(&app, &auth, &form).await).await;
    assert_eq!(aud(one), "https://b.example");
    for bad in [
        "https://c.example",
        "https://a.example/",
        "https://a.example https://b.example",
    ] {
        let form = [("grant_type", "client_credentials"), ("resource", bad)];
        let body =
            assert_oauth_error(post_basic(&app, &auth, &form).await, 400, "invalid_target").await;
        assert!(body["error_description"].is_string());
    }
    let Grants { app, .. } = Grants::start().await;
    let form = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", USER),
        ("password", PASSWORD),
        ("resource", "https://evil.example"),
    ];
    assert_oauth_error(app.token(&form).await, 400, "invalid_target").await;
}
