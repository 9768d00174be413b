//! `/admin`: who may call it (checked live), users, sessions, clients.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tessera::domain::clients::NewClient;

use crate::support::*;

/// Every admin route with a well-formed id and body.
pub(crate) fn routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/admin/users".into(),
            Some(json!({"username": "x", "password": PASSWORD})),
        ),
        (Method::GET, "/admin/users".into(), None),
        (Method::GET, format!("/admin/users/{id}"), None),
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({"roles": []})),
        ),
        (Method::POST, format!("/admin/users/{id}/disable"), None),
        (Method::POST, format!("/admin/users/{id}/enable"), None),
        (
            Method::PUT,
            format!("/admin/users/{id}/password"),
            Some(json!({"password": PASSWORD})),
        ),
        (Method::DELETE, format!("/admin/users/{id}"), None),
        (Method::GET, format!("/admin/sessions?user={id}"), None),
        (Method::GET, "/admin/events".into(), None),
        (Method::GET, format!("/admin/users/{id}/sessions"), None),
        (Method::DELETE, format!("/admin/sessions/{id}"), None),
        (
            Method::POST,
            "/admin/clients".into(),
            Some(json!({"id": "c"})),
        ),
        (Method::GET, "/admin/keys".into(), None),
        (Method::POST, "/admin/keys/rotate".into(), None),
    ]
}

/// Asserts a JSON error `{"error", "error_description"}` with this status.
pub(crate) async fn assert_admin_error(r: Response, status: u16, error: &str) -> Value {
    let what = format!("{} {}", r.url().path(), r.status());
    assert_eq!(r.status().as_u16(), status, "{what}");
    assert_eq!(r.headers()["content-type"], "application/json", "{what}");
    let body: Value = r.json().await.unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error", "error_description"], "{what}: {body}");
    assert_eq!(body["error"], error, "{what}: {body}");
    body
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    route: &(Method, String, Option<Value>),
) -> Response {
    let (method, path, body) = route;
    let mut req = app.http.request(method.clone(), app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn only_a_live_admin_token_is_let_in() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let user_token = app.login("console", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // A client holding the role `admin` for client_credentials is still not an administrator.
    let secret = app
        .client_with(NewClient {
            id: "robot".into(),
            grant_types: vec!["client_credentials".parse().unwrap()],
            roles: vec!["admin".into()],
            // Even issued for the admin API, a client's own token is no administrator's.
            audiences: vec![app.admin_audience()],
            ..Default::default()
        })
        .await
        .unwrap();
    let robot = app.client_token("robot", &secret).await;
    assert_eq!(jwt_parts(&robot).1["roles"], json!(["admin"]));

    for route in routes(&alice) {
        let r = call(&app, None, &route).await;
        assert_eq!(challenge(&r), r#"Bearer realm="tessera""#, "{route:?}");
        assert_admin_error(r, 401, "invalid_request").await;

        let r = call(&app, Some("not-a-jwt"), &route).await;
        assert!(
            challenge(&r).starts_with(r#"Bearer realm="tessera", error="invalid_token""#),
            "{route:?}"
        );
        assert_admin_error(r, 401, "invalid_token").await;

        for token in [&user_token, &robot] {
            let r = call(&app, Some(token), &route).await;
            assert!(
                challenge(&r).starts_with(r#"Bearer realm="tessera", error="insufficient_scope""#),
                "{route:?}"
            );
            assert_admin_error(r, 403, "insufficient_scope").await;
        }
    }
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users/{alice}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Once the admin's own session is revoked, the token is dead.
    let sid = jwt_parts(&admin).1["sid"].as_str().unwrap().to_string();
    let r = app
        .with_bearer(Method::DELETE, &format!("/admin/sessions/{sid}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users/{alice}"), &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn users_are_created_read_and_changed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = app
        .with_bearer(Method::POST, "/admin/users", &admin)
        .json(&json!({"username": "carol", "password": PASSWORD, "roles": ["a", "b", "a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{created}");
    assert_eq!(
        created,
        json!({"id": id, "username": "carol", "roles": ["a", "b"], "ver": 1, "disabled": false})
    );
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Read in full: the created user's fields, with its creation time, sessions and events.
    let mut read = r.json::<Value>().await.unwrap();
    let read = read.as_object_mut().unwrap();
    assert!(read.remove("created_at").unwrap().is_string());
    assert_eq!(read.remove("sessions"), Some(json!([])));
    assert_eq!(read.remove("sessions_next_cursor"), Some(Value::Null));
    assert_eq!(read.remove("events"), Some(json!([])));
    assert_eq!(Value::Object(read.clone()), created);
    // The new user can sign in, and `sub` is the id.
    let login = app.login("console", "carol", PASSWORD).await;
    assert_eq!(
        jwt_parts(login["access_token"].as_str().unwrap()).1["sub"],
        json!(id)
    );

    let r = app
        .with_bearer(Method::POST, "/admin/users", &admin)
        .json(&json!({"username": "carol", "password": "another password"}))
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 409, "conflict").await;

    let r = app
        .with_bearer(Method::PUT, &format!("/admin/users/{id}/roles"), &admin)
        .json(&json!({"roles": ["c", "c"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": id, "username": "carol", "roles": ["c"], "ver": 2, "disabled": false})
    );
}

#[tokio::test]
async fn sessions_are_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let first = app.login("console", "alice", PASSWORD).await;
    let second = app.login("console", "alice", PASSWORD).await;
    let sid_of = |v: &Value| jwt_parts(v["access_token"].as_str().unwrap()).1["sid"].clone();
    let list = |app: &TestApp| {
        app.with_bearer(
            Method::GET,
            &format!("/admin/users/{alice}/sessions"),
            &admin,
        )
        .send()
    };

    let r = list(&app).await.unwrap();
    assert_eq!(r.status(), 200);
    let sessions: Value = r.json().await.unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for s in sessions {
        let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "client_id",
                "created_at",
                "expires_at",
                "last_used_at",
                "sid"
            ]
        );
        assert_eq!(s["client_id"], "console");
        for k in ["created_at", "expires_at", "last_used_at"] {
            let t = s[k].as_str().unwrap();
            assert!(t.len() == 20 && t.ends_with('Z'), "{k}: {t}");
        }
    }
    let mut sids: Vec<Value> = sessions.iter().map(|s| s["sid"].clone()).collect();
    sids.sort_by_key(|v| v.to_string());
    let mut expected = vec![sid_of(&first), sid_of(&second)];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(sids, expected);

    let sid = sid_of(&first);
    let path = format!("/admin/sessions/{}", sid.as_str().unwrap());
    let r = app
        .with_bearer(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.text().await.unwrap(), "");
    let rt = first["refresh_token"].as_str().unwrap();
    assert_oauth_error(app.refresh("console", rt).await, 400, "invalid_grant").await;
    let left: Value = list(&app).await.unwrap().json().await.unwrap();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["sid"], sid_of(&second));

    // Already revoked, or never existed: 404.
    let r = app
        .with_bearer(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 404, "not_found").await;
    let unknown = format!("/admin/sessions/{}", uuid::Uuid::new_v4());
    let r = app
        .with_bearer(Method::DELETE, &unknown, &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn clients_are_registered() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let post = |body: Value| {
        app.with_bearer(Method::POST, "/admin/clients", &admin)
            .json(&body)
            .send()
    };
    let r = post(
        json!({"id": "svc", "grant_types": ["client_credentials"], "roles": ["r"],
                        "audiences": ["https://api.example"], "capabilities": ["events"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let secret = body["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43, "256 random bits");
    assert_eq!(
        body,
        json!({"client_id": "svc", "public": false, "grant_types": ["client_credentials"],
               "scopes": [], "audiences": ["https://api.example"], "roles": ["r"],
               "capabilities": ["events"], "client_secret": secret,
               "redirect_uris": [], "origins": [], "third_party": false,
               "post_logout_redirect_uris": [], "created_at": body["created_at"],
               "previous_secret_expires_at": null})
    );
    assert!(
        body["created_at"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );
    let token = app.client_token("svc", &secret).await;
    assert_eq!(jwt_parts(&token).1["roles"], json!(["r"]));

    let r = post(json!({"id": "spa", "public": true, "grant_types": ["password"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["grant_types"], json!(["password", "refresh_token"]));

    assert_admin_error(post(json!({"id": "svc"})).await.unwrap(), 409, "conflict").await;
    for bad in [
        json!({"id": ""}),
        json!({"id": "has space"}),
        json!({"id": uuid::Uuid::new_v4().to_string()}),
        json!({"id": "x", "grant_types": ["authorization_code"]}),
        json!({"id": "x", "capabilities": ["root"]}),
        json!({"id": "x", "public": true, "grant_types": ["client_credentials"]}),
        json!({"id": "x", "secret": "chosen"}),
        json!({"id": 5}),
    ] {
        assert_admin_error(post(bad).await.unwrap(), 400, "invalid_request").await;
    }
}
