//! `/admin` with bad input: malformed ids, unknown users, broken JSON, wrong
//! shapes, wrong content types, huge bodies. Always a clean JSON 4xx, never a 5xx.

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::admin::api::{assert_admin_error, routes};
use crate::support::*;

/// The routes that take a user or session id in the path.
fn id_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    routes(id)
        .into_iter()
        .filter(|(_, path, _)| path.contains(id))
        .collect()
}

#[tokio::test]
async fn malformed_ids_are_400_and_unknown_ones_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for bad in [
        "not-a-uuid",
        "123",
        "00000000-0000-0000-0000-00000000000g",
        "%20",
        "..%2F..%2Fetc",
        "%27%20OR%201%3D1",
    ] {
        for (method, path, body) in id_routes(bad) {
            let mut req = app.with_bearer(method.clone(), &path, &admin);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            assert_admin_error(r, 400, "invalid_request").await;
        }
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    for (method, path, body) in id_routes(&unknown) {
        let mut req = app.with_bearer(method.clone(), &path, &admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert_admin_error(r, 404, "not_found").await;
    }
}

/// A path segment that is not valid UTF-8 once percent-decoded is malformed input
/// like any other: the admin API's JSON error, not axum's plain-text rejection.
#[tokio::test]
async fn an_undecodable_path_segment_gets_the_json_error_too() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (method, path, body) in id_routes("%FF%FE") {
        let mut req = app.with_bearer(method.clone(), &path, &admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert_admin_error(r, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn role_bodies_must_be_a_list_of_role_names() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let path = format!("/admin/users/{alice}/roles");
    let send = |body: &'static str, ctype: Option<&'static str>| {
        let mut req = app.with_bearer(Method::PUT, &path, &admin).body(body);
        if let Some(c) = ctype {
            req = req.header(header::CONTENT_TYPE, c);
        }
        req.send()
    };
    const JSON: Option<&str> = Some("application/json");
    for body in [
        "",
        "{",
        "not json",
        "[]",
        "null",
        "{}",
        r#"{"roles": "admin"}"#,
        r#"{"roles": null}"#,
        r#"{"roles": [1, 2]}"#,
        r#"{"roles": [["admin"]]}"#,
        r#"{"roles": [{"name": "admin"}]}"#,
        r#"{"roles": ["a"], "ver": 7}"#,
        r#"{"roles": [""]}"#,
        r#"{"roles": ["a,b"]}"#,
        r#"{"roles": ["bell\u0007"]}"#,
        r#"{"roles": ["a"]} trailing"#,
        "{\"roles\": [\"\u{0}\"]}",
    ] {
        let r = send(body, JSON).await.unwrap();
        assert_admin_error(r, 400, "invalid_request").await;
    }
    let too_many = json!({ "roles": (0..257).map(|i| format!("r{i}")).collect::<Vec<_>>() });
    let r = app
        .with_bearer(Method::PUT, &path, &admin)
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 400, "invalid_request").await;
    let long = json!({ "roles": ["x".repeat(129)] });
    let r = app
        .with_bearer(Method::PUT, &path, &admin)
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 400, "invalid_request").await;

    // Not JSON at all: 415.
    for ctype in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let r = send(r#"{"roles": ["a"]}"#, ctype).await.unwrap();
        assert_admin_error(r, 415, "invalid_request").await;
    }
    // Larger than 64 KiB: 413.
    let huge = format!(r#"{{"roles": ["{}"]}}"#, "a".repeat(70 * 1024));
    let r = app
        .with_bearer(Method::PUT, &path, &admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 413, "invalid_request").await;

    // None of it changed anything; a charset parameter is fine.
    let r = send(
        r#"{"roles": ["ok"]}"#,
        Some("application/json; charset=utf-8"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": alice, "username": "alice", "roles": ["ok"], "ver": 2, "disabled": false})
    );
}

#[tokio::test]
async fn user_bodies_are_checked() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for body in [
        json!({}),
        json!({"username": "x"}),
        json!({"password": PASSWORD}),
        json!({"username": "", "password": PASSWORD}),
        json!({"username": "x", "password": "short"}),
        json!({"username": "x", "password": PASSWORD, "roles": "admin"}),
        json!({"username": "x", "password": PASSWORD, "roles": [""]}),
        json!({"username": "x", "password": PASSWORD, "admin": true}),
        json!({"username": "tab\there", "password": PASSWORD}),
        json!({"username": 42, "password": PASSWORD}),
    ] {
        let r = app
            .with_bearer(Method::POST, "/admin/users", &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(r, 400, "invalid_request").await;
    }
    assert!(app.core.users.user_by_name("x").await.unwrap().is_none());
}

/// The bodies are JSON objects (openapi.yaml: `{username, password, roles}`, `{roles}`):
/// a positional array is malformed input, as an unknown field is.
#[tokio::test]
async fn a_json_array_never_stands_in_for_an_object() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let mut answers = Vec::new();
    for (method, path, body) in [
        (
            Method::POST,
            "/admin/users".to_string(),
            json!(["x", PASSWORD]),
        ),
        (
            Method::PUT,
            format!("/admin/users/{alice}/roles"),
            json!([["admin"]]),
        ),
        (Method::POST, "/admin/clients".to_string(), json!(["x"])),
    ] {
        let r = app
            .with_bearer(method.clone(), &path, &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        answers.push((format!("{method} {path} {body}"), r.status().as_u16()));
    }
    assert!(
        answers.iter().all(|(_, status)| *status == 400),
        "arrays accepted as objects: {answers:#?}"
    );
    assert!(app.core.users.user_by_name("x").await.unwrap().is_none());
    let alice = app.core.users.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(alice.roles, ["reader"]);
}
