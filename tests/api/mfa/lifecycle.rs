//! An operator's reset (CLI and admin API), discovery, and the feed's event.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::oauth::code_flow::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reset_removes_the_factors_and_ends_every_session() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    enrolled(&app, "alice").await;
    let session = app.login("web", "alice", PASSWORD).await;
    let mut acct = Browser::new(&app);
    account_sign_in(&mut acct, "alice").await;

    let (code, _, err) = app.cli(&["user", "mfa", "reset", "alice"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 second factors"), "{err}");
    let rows: Vec<(String, Option<String>)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT type, reason FROM security_events WHERE sub = $1 AND reason = 'mfa_reset' ORDER BY id",
        &[(&alice).into()],
    )
    .await;
    assert_eq!(
        rows,
        [
            ("user.credential_changed".into(), Some("mfa_reset".into())),
            ("session.revoked".into(), Some("mfa_reset".into())),
        ]
    );
    let (actor, details): (String, String) = crate::sql::one(
        app.core.db.writer(),
        "SELECT actor, details FROM audit_log WHERE target = $1 AND action = 'reset_factors'",
        &[(&alice).into()],
    )
    .await;
    assert!(actor.starts_with("cli:"), "{actor}");
    assert_eq!(details, r#"{"factors_removed":1}"#);
    let refresh = app
        .refresh("web", session["refresh_token"].as_str().unwrap())
        .await;
    assert_oauth_error(refresh, 400, "invalid_grant").await;
    let page = acct.get("/account").await.text().await.unwrap();
    assert!(
        page.contains(r#"action="/account/login""#),
        "the browser session ended"
    );

    let (code, _, err) = app.cli(&["user", "mfa", "reset", "nobody"], None);
    assert_ne!(code, 0);
    assert!(err.contains("no user named"), "{err}");
}

#[tokio::test]
async fn the_admin_api_resets_a_users_factors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    enrolled(&app, "alice").await;
    let path = format!("/admin/users/{alice}/factors");
    let resp = app
        .with_bearer(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"removed": 1}));
    let resp = app
        .with_bearer(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"removed": 0}));
    let missing = format!("/admin/users/{}/factors", uuid::Uuid::new_v4());
    let resp = app
        .with_bearer(Method::DELETE, &missing, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app
        .with_bearer(Method::DELETE, "/admin/users/x/factors", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let anonymous = app.http.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn discovery_lists_the_acr_values_and_claims() {
    let app = TestApp::spawn().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["acr_values_supported"],
        json!(["urn:tessera:acr:pwd", "urn:tessera:acr:mfa"])
    );
    let claims = doc["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&json!("amr")) && claims.contains(&json!("acr")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_mfa_is_set_by_the_cli_and_the_admin_api() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let args = [
        "client",
        "add",
        "bank",
        "--public",
        "--grant",
        "password",
        "--require-mfa",
    ];
    let (code, _, err) = app.cli(&args, None);
    assert_eq!(code, 0, "{err}");
    app.user("alice", PASSWORD, &[]).await;
    let form = [
        ("grant_type", "password"),
        ("client_id", "bank"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    assert_oauth_error(app.token(&form).await, 400, "invalid_grant").await;

    let body =
        json!({"id": "teller", "public": true, "grant_types": ["password"], "require_mfa": true});
    let resp = app
        .with_bearer(Method::POST, "/admin/clients", &admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.json::<Value>().await.unwrap()["require_mfa"], true);
    let form = [
        ("grant_type", "password"),
        ("client_id", "teller"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    assert_oauth_error(app.token(&form).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn deleting_a_user_erases_their_second_factors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    enrolled(&app, "alice").await;
    let codes = app
        .core
        .signin
        .factors
        .new_recovery_codes(&alice, None)
        .await;
    assert_eq!(codes.unwrap().len(), 10);
    let path = format!("/admin/users/{alice}");
    let resp = app
        .with_bearer(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for table in ["factors", "recovery_codes"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1");
        let (n,): (i64,) = crate::sql::one(app.core.db.writer(), &sql, &[(&alice).into()]).await;
        assert_eq!(n, 0, "{table}");
    }
}
