//! The grace window per client: a public client can be strict while the server's
//! default stays forgiving; every grace replay is counted and logged; a clock step
//! backwards never widens the window.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::domain::clients::NewClient;

use crate::oauth::refresh::{assert_invalid_grant, refresh_ok, revocations, rt};
use crate::oauth::token::assert_token_ok;
use crate::support::*;

async fn app_with_grace(server: &str, client: Option<u64>) -> TestApp {
    let app = TestApp::with(&[("refresh_reuse_grace", server)]).await;
    app.client_with(NewClient {
        id: "app".into(),
        public: true,
        grant_types: vec!["password".parse().unwrap()],
        audiences: vec!["https://api.example".into()],
        refresh_reuse_grace: client,
        ..Default::default()
    })
    .await;
    app.user(USER, PASSWORD, &["reader"]).await;
    app
}

fn grace_replays(app: &TestApp) -> u64 {
    let text = app.core.metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_refresh_grace_replays_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_strict_client_treats_a_replay_as_reuse_whatever_the_server_default() {
    let app = app_with_grace("10", Some(0)).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let r1 = rt(&refresh_ok(&app, &r0).await);
    assert_invalid_grant(&app, &r0).await;
    assert_invalid_grant(&app, &r1).await;
    assert_eq!(revocations(&app).await.len(), 1);
    assert_eq!(grace_replays(&app), 0);
}

#[tokio::test]
async fn a_client_grace_applies_on_a_strict_server_and_each_replay_is_counted() {
    let app = app_with_grace("0", Some(30)).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let r1 = rt(&refresh_ok(&app, &r0).await);
    assert_eq!(rt(&refresh_ok(&app, &r0).await), r1);
    assert_eq!(rt(&refresh_ok(&app, &r0).await), r1);
    assert_eq!(grace_replays(&app), 2);
    assert!(revocations(&app).await.is_empty());
}

#[tokio::test]
async fn a_consumed_at_in_the_future_is_reuse_not_grace() {
    // As after the clock stepped backwards: now - consumed_at < 0.
    let app = app_with_grace("10", None).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    refresh_ok(&app, &r0).await;
    app.step_back(Duration::from_secs(120));
    assert_invalid_grant(&app, &r0).await;
    assert_eq!(revocations(&app).await.len(), 1);
    assert_eq!(grace_replays(&app), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_is_set_per_client_by_the_admin_api_and_the_cli() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        app.with_bearer(reqwest::Method::POST, "/admin/clients", &admin)
            .json(&body)
            .send()
    };
    let r = create(json!({"id": "spa", "public": true, "refresh_reuse_grace": 0}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["refresh_reuse_grace"], 0);
    let r = create(json!({"id": "lazy", "public": true, "refresh_reuse_grace": 301}))
        .await
        .unwrap();
    let body = crate::admin::api::assert_admin_error(r, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("300"));
    let r = create(json!({"id": "dflt", "public": true})).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["refresh_reuse_grace"],
        Value::Null
    );

    let (code, _, err) = app.cli(
        &[
            "client",
            "add",
            "mobile",
            "--public",
            "--refresh-reuse-grace",
            "2",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let mobile = app
        .core
        .clients
        .get(&app.core.db, "mobile")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mobile.refresh_reuse_grace,
        Some(std::time::Duration::from_secs(2))
    );
    // And the strict one really is strict.
    app.user("bob", PASSWORD, &[]).await;
    let form = [
        ("grant_type", "password"),
        ("client_id", "spa"),
        ("username", "bob"),
        ("password", PASSWORD),
    ];
    let r0 = rt(&assert_token_ok(app.token(&form).await).await);
    assert_token_ok(app.refresh("spa", &r0).await).await;
    assert_oauth_error(app.refresh("spa", &r0).await, 400, "invalid_grant").await;
}
