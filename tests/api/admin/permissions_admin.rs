//! A demoted administrator is refused at once: the admin role is checked live.

use reqwest::Method;
use serde_json::json;

use crate::admin::permissions::{assert_insufficient_scope, put_roles, str_of};
use crate::support::*;

/// Root and a second administrator, boss; returns boss's sub and access token.
async fn second_admin(app: &TestApp) -> (String, String) {
    let boss = app.user("boss", PASSWORD, &["admin", "ops"]).await;
    let token = str_of(
        &app.login("console", "boss", PASSWORD).await,
        "access_token",
    );
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users/{boss}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "boss is an administrator");
    (boss, token)
}

#[tokio::test]
async fn a_demoted_admin_is_refused_at_once() {
    // Under `reissue` the session survives, so the refusal comes from the live role check.
    let Policy {
        app,
        alice,
        admin: root,
        ..
    } = Policy::start("reissue").await;
    let (boss, token) = second_admin(&app).await;
    assert_eq!(
        put_roles(&app, &root, &boss, json!(["ops"])).await.status(),
        200
    );
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users/{alice}"), &token)
        .send()
        .await
        .unwrap();
    assert_insufficient_scope(r).await;
    assert_eq!(
        jwt_parts(&token).1["roles"],
        json!(["admin", "ops"]),
        "the token still claims admin"
    );
    // Nor can the demoted admin change anything.
    assert_insufficient_scope(put_roles(&app, &token, &alice, json!(["x"])).await).await;
}

#[tokio::test]
async fn under_revoke_a_demoted_admins_session_is_gone() {
    let Policy {
        app,
        alice,
        admin: root,
        ..
    } = Policy::start("revoke").await;
    let (boss, token) = second_admin(&app).await;
    assert_eq!(
        put_roles(&app, &root, &boss, json!(["ops"])).await.status(),
        200
    );
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users/{alice}"), &token)
        .send()
        .await
        .unwrap();
    assert_invalid_token(r, "the admin API").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_who_demotes_themselves_through_the_cli_is_refused() {
    let Policy {
        app,
        alice,
        admin: root,
        ..
    } = Policy::start("reissue").await;
    let path = format!("/admin/users/{alice}");
    let ok = app
        .with_bearer(Method::GET, &path, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (code, _, err) = tokio::task::block_in_place(|| {
        app.cli(&["user", "roles", "root", "--remove", "admin"], None)
    });
    assert_eq!(code, 0, "{err}");
    let r = app
        .with_bearer(Method::GET, &path, &root)
        .send()
        .await
        .unwrap();
    assert_insufficient_scope(r).await;
}
