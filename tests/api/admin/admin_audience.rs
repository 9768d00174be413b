//! The admin API takes only access tokens issued for the admin audience (RFC 8707):
//! an administrator who signs in to some other app does not hand it `/admin`.

use reqwest::Method;
use serde_json::json;
use tessera::domain::clients::NewClient;

use crate::admin::api::{assert_admin_error, routes};
use crate::support::*;

/// Public client `thirdparty`, audience `https://thirdparty.example`, scope `read`.
async fn thirdparty(app: &TestApp) {
    app.client_with(NewClient {
        id: "thirdparty".into(),
        public: true,
        grant_types: vec!["password".parse().unwrap()],
        scopes: vec!["read".into()],
        audiences: vec!["https://thirdparty.example".into()],
        ..Default::default()
    })
    .await;
}

#[tokio::test]
async fn an_admins_token_for_another_app_opens_no_admin_route() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    thirdparty(&app).await;
    let login = app.login("thirdparty", "root", "root password 1").await;
    let foreign = login["access_token"].as_str().unwrap();
    assert_eq!(jwt_parts(foreign).1["aud"], "https://thirdparty.example");

    for route in routes(&uuid::Uuid::new_v4().to_string()) {
        let (method, path, body) = &route;
        let mut req = app.with_bearer(method.clone(), path, foreign);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        let body = assert_admin_error(r, 401, "invalid_token").await;
        let d = body["error_description"].as_str().unwrap();
        assert!(
            d.contains("not issued for the admin API"),
            "{method} {path}: {d}"
        );
    }
    // Nothing was created by the attempts above.
    let r = app
        .with_bearer(Method::POST, "/admin/users", foreign)
        .json(&json!({"username": "mallory", "password": PASSWORD, "roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .with_bearer(Method::POST, "/admin/clients", foreign)
        .json(&json!({"id": "minted", "capabilities": ["events", "introspect"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        app.core
            .clients
            .get(&app.core.db, "minted")
            .await
            .unwrap()
            .is_none()
    );

    // The same administrator's token for the admin audience works.
    let r = app
        .with_bearer(Method::POST, "/admin/users", &admin)
        .json(&json!({"username": "dora", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn only_a_client_allowed_the_admin_audience_gets_it() {
    let app = TestApp::spawn().await;
    app.user("root", "root password 1", &["admin"]).await;
    thirdparty(&app).await;
    let resource = app.admin_audience();
    assert_eq!(resource, format!("{}/admin", app.addr));
    // Asking for the admin audience through a client that may not target it.
    let r = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "thirdparty"),
            ("username", "root"),
            ("password", "root password 1"),
            ("resource", &resource),
        ])
        .await;
    assert_oauth_error(r, 400, "invalid_target").await;

    // A client whose audiences include it gets it with `resource`, and only then.
    app.client_with(NewClient {
        id: "ops".into(),
        public: true,
        grant_types: vec!["password".parse().unwrap()],
        audiences: vec!["https://api.example".into(), resource.clone()],
        ..Default::default()
    })
    .await;
    let login = |resource: Option<String>| {
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", "password".to_string()),
                ("client_id", "ops".into()),
                ("username", "root".into()),
                ("password", "root password 1".into()),
            ];
            if let Some(r) = resource {
                form.push(("resource", r));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body: serde_json::Value = app.token(&form).await.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let api_only = login(Some("https://api.example".into())).await;
    let r = app
        .with_bearer(Method::GET, "/admin/keys", &api_only)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 401, "invalid_token").await;
    let admin = login(Some(resource)).await;
    let r = app
        .with_bearer(Method::GET, "/admin/keys", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_admin_audience_is_a_setting() {
    let app = TestApp::with(&[("admin_audience", "urn:example:tessera-admin")]).await;
    assert_eq!(app.admin_audience(), "urn:example:tessera-admin");
    let admin = app.admin_token().await;
    assert_eq!(jwt_parts(&admin).1["aud"], "urn:example:tessera-admin");
    let r = app
        .with_bearer(Method::GET, "/admin/keys", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
