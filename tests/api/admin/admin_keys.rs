//! `/admin/keys`: listing and on-demand rotation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::api::assert_admin_error;
use crate::support::*;

// Multi-threaded: rotation generates the key in `block_in_place`, which panics on a
// current-thread runtime (the server binary always runs multi-threaded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_and_rotation_waits_for_the_next_key_to_be_published() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = app
        .with_bearer(Method::GET, "/admin/keys", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let keys = body["keys"].as_array().unwrap();
    let mut states: Vec<&str> = keys.iter().map(|k| k["state"].as_str().unwrap()).collect();
    states.sort_unstable();
    assert_eq!(states, ["active", "next"], "{body}");
    for k in keys {
        let mut names: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "activated_at",
                "alg",
                "created_at",
                "kid",
                "purpose",
                "retired_at",
                "revoked_at",
                "state"
            ]
        );
        assert!(k.get("d").is_none() && k.get("private").is_none());
    }
    // The next key was published moments ago: far less than jwks_max_age (600 s).
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 409, "conflict").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_activates_the_next_key_and_keeps_old_tokens_valid() {
    let app = TestApp::with(&[("jwks_max_age", "1")]).await;
    let admin = app.admin_token().await;
    let old_kid = jwt_parts(&admin).0["kid"].clone();
    let keys: Value = app
        .with_bearer(Method::GET, "/admin/keys", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next_kid = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "next")
        .unwrap()["kid"]
        .clone();
    // The next key must have been published for jwks_max_age (1 s) before it may sign.
    app.advance(std::time::Duration::from_millis(2100));
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["rotated"], true);
    assert_eq!(body["active_kid"], next_kid);
    assert!(body["message"].is_string());

    // Signed by the retired key, the admin's token still works; new tokens use the new key.
    let keys: Value = app
        .with_bearer(Method::GET, "/admin/keys", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = |kid: &Value| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == *kid)
            .map(|k| k["state"].clone())
    };
    assert_eq!(state(&old_kid), Some(json!("retired")));
    assert_eq!(state(&next_kid), Some(json!("active")));
    let fresh = app.login("console", "root", "root password 1").await;
    assert_eq!(
        jwt_parts(fresh["access_token"].as_str().unwrap()).0["kid"],
        next_kid
    );

    let events = tessera::store::events::after(app.core.db.writer(), 0, None, 100)
        .await
        .unwrap();
    let rotated: Vec<_> = events.iter().filter(|e| e.kind == "keys.rotated").collect();
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        (json!(rotated[0].kid), rotated[0].reason.as_deref()),
        (old_kid.clone(), Some("rotated"))
    );

    for bad in [
        json!({"alg": "HS256"}),
        json!({"surprise": true}),
        json!([]),
    ] {
        let r = app
            .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_admin_error(r, 400, "invalid_request").await;
    }
}
