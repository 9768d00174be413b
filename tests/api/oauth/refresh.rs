//! Refresh tokens: rotation, scope, reuse detection, the grace window and races
//! (CONFORMANCE 21–25).

use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};

use crate::oauth::token::assert_token_ok;
use crate::support::*;

/// An app with public client `app` (scopes read, write) and user alice (role reader).
pub(crate) async fn session_app(extra: &[(&'static str, &str)]) -> TestApp {
    let app = TestApp::with(extra).await;
    app.client("app", true, &["password"], &["read", "write"], &[])
        .await;
    app.user(USER, PASSWORD, &["reader"]).await;
    app
}

pub(crate) fn rt(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}

pub(crate) fn claims(body: &Value) -> Value {
    jwt_parts(body["access_token"].as_str().unwrap()).1
}

pub(crate) async fn refresh_ok(app: &TestApp, token: &str) -> Value {
    assert_token_ok(app.refresh("app", token).await).await
}

async fn refresh_scope(app: &TestApp, token: &str, scope: &str) -> Response {
    app.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", token),
        ("scope", scope),
    ])
    .await
}

async fn login_scope(app: &TestApp, scope: &str) -> Value {
    let form = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", USER),
        ("password", PASSWORD),
        ("scope", scope),
    ];
    assert_token_ok(app.token(&form).await).await
}

pub(crate) async fn assert_invalid_grant(app: &TestApp, token: &str) {
    assert_oauth_error(app.refresh("app", token).await, 400, "invalid_grant").await;
}

/// `session.revoked` events as (reason, sid).
pub(crate) async fn revocations(app: &TestApp) -> Vec<(Option<String>, Option<String>)> {
    let rows: Vec<(String, Option<String>, Option<String>)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT type, reason, sid FROM security_events ORDER BY id",
        &[],
    )
    .await;
    rows.into_iter()
        .filter(|(kind, _, _)| kind == "session.revoked")
        .map(|(_, reason, sid)| (reason, sid))
        .collect()
}

/// Refresh tokens not yet consumed (the heads of named families, legacy rows
/// unconsumed): a family that never branches has exactly one.
async fn live_tokens(app: &TestApp) -> i64 {
    let (n,): (i64,) = crate::sql::one(
        app.core.db.writer(),
        "SELECT (SELECT COUNT(*) FROM refresh_families WHERE head_hash IS NOT NULL)
              + (SELECT COUNT(*) FROM refresh_tokens WHERE consumed_at IS NULL)",
        &[],
    )
    .await;
    n
}

#[tokio::test]
async fn rotation_issues_a_new_token_and_consumes_the_old() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let login = app.login("app", USER, PASSWORD).await;
    let r0 = rt(&login);
    let first = refresh_ok(&app, &r0).await;
    let r1 = rt(&first);
    assert_ne!(r1, r0);
    assert_eq!(claims(&first)["sid"], claims(&login)["sid"]);
    assert_ne!(claims(&first)["jti"], claims(&login)["jti"]);
    assert_eq!(claims(&first)["sub"], claims(&login)["sub"]);
    let second = refresh_ok(&app, &r1).await;
    assert_ne!(rt(&second), r1);
    assert_invalid_grant(&app, &r0).await;
}

#[tokio::test]
async fn the_new_refresh_token_keeps_the_original_scope() {
    let app = session_app(&[]).await;
    let login = login_scope(&app, "read").await;
    assert_eq!(login["scope"], "read");
    let next = refresh_ok(&app, &rt(&login)).await;
    assert_eq!(next["scope"], "read");
    assert_eq!(claims(&next)["scope"], "read");
}

#[tokio::test]
async fn a_narrower_scope_narrows_only_the_access_token() {
    let app = session_app(&[]).await;
    let login = app.login("app", USER, PASSWORD).await;
    assert_eq!(login["scope"], "read write");
    let narrow = assert_token_ok(refresh_scope(&app, &rt(&login), "write").await).await;
    assert_eq!(narrow["scope"], "write");
    assert_eq!(claims(&narrow)["scope"], "write");
    let again = refresh_ok(&app, &rt(&narrow)).await;
    assert_eq!(again["scope"], "read write");
    assert_eq!(claims(&again)["scope"], "read write");
}

#[tokio::test]
async fn a_wider_scope_is_invalid_scope_and_does_not_consume_the_token() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let login = login_scope(&app, "read").await;
    let r0 = rt(&login);
    for wider in ["read write", "write", "admin"] {
        let r = refresh_scope(&app, &r0, wider).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
    let next = refresh_ok(&app, &r0).await;
    assert_eq!(next["scope"], "read");
    assert!(revocations(&app).await.is_empty());
}

#[tokio::test]
async fn a_resource_outside_the_session_is_invalid_target_and_does_not_consume() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", r0.as_str()),
        ("resource", "https://elsewhere.example"),
    ];
    assert_oauth_error(app.token(&form).await, 400, "invalid_target").await;
    let next = refresh_ok(&app, &r0).await;
    assert_eq!(claims(&next)["aud"], "https://api.example");
}

/// Presenting a consumed token is reuse whatever else the request says: a bad
/// `scope` must not let it skip reuse detection (RFC 9700 §4.14.2).
#[tokio::test]
async fn reuse_with_a_bad_scope_still_revokes_the_family() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let r1 = rt(&refresh_ok(&app, &r0).await);
    let r = refresh_scope(&app, &r0, "admin").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    assert_invalid_grant(&app, &r1).await;
    assert_eq!(revocations(&app).await.len(), 1);
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    app.client("other", true, &["password"], &["read", "write"], &[])
        .await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    assert_oauth_error(app.refresh("other", &r0).await, 400, "invalid_grant").await;
    // Refused without touching the family: the owner's token still rotates.
    refresh_ok(&app, &r0).await;
    assert!(revocations(&app).await.is_empty());
}

#[tokio::test]
async fn reuse_in_strict_mode_revokes_the_family() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let login = app.login("app", USER, PASSWORD).await;
    let r0 = rt(&login);
    let r1 = rt(&refresh_ok(&app, &r0).await);
    assert_invalid_grant(&app, &r0).await;
    assert_invalid_grant(&app, &r1).await;
    let sid = claims(&login)["sid"].as_str().unwrap().to_string();
    assert_eq!(
        revocations(&app).await,
        [(Some("refresh_token_reuse".into()), Some(sid))]
    );
    let rows: Vec<(String, Option<String>)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT type, reason FROM security_events",
        &[],
    )
    .await;
    assert!(rows.contains(&("session.revoked".into(), Some("refresh_token_reuse".into()))));
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let app = session_app(&[("refresh_reuse_grace", "1")]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let r1 = rt(&refresh_ok(&app, &r0).await);
    assert_eq!(rt(&refresh_ok(&app, &r0).await), r1, "within the window");
    app.advance(Duration::from_millis(2100));
    assert_invalid_grant(&app, &r0).await;
    assert_invalid_grant(&app, &r1).await;
    assert_eq!(revocations(&app).await.len(), 1);
}

#[tokio::test]
async fn a_retry_within_the_grace_window_returns_the_same_successor() {
    let app = session_app(&[]).await;
    let login = app.login("app", USER, PASSWORD).await;
    let r0 = rt(&login);
    let first = refresh_ok(&app, &r0).await;
    let r1 = rt(&first);
    for _ in 0..3 {
        let retry = refresh_ok(&app, &r0).await;
        assert_eq!(rt(&retry), r1, "the same successor, not a branch");
        assert_eq!(claims(&retry)["sid"], claims(&login)["sid"]);
        assert_ne!(claims(&retry)["jti"], claims(&first)["jti"]);
    }
    assert_eq!(live_tokens(&app).await, 1);
    // Once the successor has been used, the original is plain reuse.
    let r2 = rt(&refresh_ok(&app, &r1).await);
    assert_eq!(live_tokens(&app).await, 1);
    assert_invalid_grant(&app, &r0).await;
    assert_invalid_grant(&app, &r2).await;
    assert_invalid_grant(&app, &r1).await;
    let reasons: Vec<_> = revocations(&app)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(reasons, [Some("refresh_token_reuse".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_in_strict_mode_have_one_winner() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let results = race_at(&app.http, &[&app.addr], &r0).await;
    let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!((*status, &body["error"]), (400, &json!("invalid_grant")));
    }
    // The losers are reuse: the family is revoked once, the winner's token with it.
    assert_eq!(revocations(&app).await.len(), 1);
    assert_invalid_grant(&app, &rt(&winners[0].1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_within_grace_all_get_the_same_successor() {
    let app = session_app(&[]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let results = race_at(&app.http, &[&app.addr], &r0).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let successors: std::collections::HashSet<String> =
        results.iter().map(|(_, b)| rt(b)).collect();
    assert_eq!(successors.len(), 1, "the family branched: {successors:?}");
    assert_eq!(live_tokens(&app).await, 1);
    assert!(revocations(&app).await.is_empty());
    refresh_ok(&app, successors.iter().next().unwrap()).await;
}
