//! `/admin/clients`: list, read, change, rotate the secret, remove; every bad input a
//! clear 4xx; only an administrator.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use super::api::assert_admin_error;
use crate::support::*;

/// `method path` as the admin with an optional JSON body.
pub(crate) async fn call(
    app: &TestApp,
    admin: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut req = app.with_bearer(method, path, admin);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// The status and JSON body of `method path`.
pub(crate) async fn json_of(
    app: &TestApp,
    admin: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = call(app, admin, method, path, body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn ids(body: &Value) -> Vec<&str> {
    body["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect()
}

/// Every client route, with a well-formed body.
fn client_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/admin/clients".into(), None),
        (Method::GET, format!("/admin/clients/{id}"), None),
        (
            Method::PATCH,
            format!("/admin/clients/{id}"),
            Some(json!({"scopes": []})),
        ),
        (Method::POST, format!("/admin/clients/{id}/secret"), None),
        (Method::DELETE, format!("/admin/clients/{id}"), None),
    ]
}

#[tokio::test]
async fn list_pages_by_id_filters_by_prefix_and_reads_one_client_without_its_secret() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for id in ["app-b", "app-a", "svc"] {
        app.client(id, id != "svc", &[], &["read"], &[]).await;
    }
    let (status, first) = json_of(&app, &admin, Method::GET, "/admin/clients?limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), ["app-a", "app-b"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = json_of(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/clients?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(ids(&second), ["console", "svc"]);
    // The last page: the console's own client, which every server registers at start.
    let cursor = second["next_cursor"].as_str().expect("a last page");
    let (_, third) = json_of(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/clients?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(ids(&third), ["tessera-console"]);
    assert_eq!(third["next_cursor"], Value::Null);
    let (_, apps) = json_of(&app, &admin, Method::GET, "/admin/clients?q=app-", None).await;
    assert_eq!(ids(&apps), ["app-a", "app-b"]);
    // `%` and `_` are no wildcards.
    let (_, none) = json_of(&app, &admin, Method::GET, "/admin/clients?q=app%25", None).await;
    assert_eq!(ids(&none), Vec::<&str>::new());

    let (status, svc) = json_of(&app, &admin, Method::GET, "/admin/clients/svc", None).await;
    assert_eq!(status, 200, "{svc}");
    let mut keys: Vec<&str> = svc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "audiences",
            "capabilities",
            "client_id",
            "created_at",
            "grant_types",
            "origins",
            "post_logout_redirect_uris",
            "previous_secret_expires_at",
            "public",
            "redirect_uris",
            "require_mfa",
            "roles",
            "scopes",
            "third_party"
        ],
        "everything but the secret: {svc}"
    );
    assert_eq!(svc["grant_types"], json!(["client_credentials"]));
    assert_eq!(svc["public"], false);
    assert_eq!(svc["previous_secret_expires_at"], Value::Null);
    assert!(svc["created_at"].as_str().unwrap().ends_with('Z'));
    // The list shows each client as the read does.
    assert_eq!(second["clients"][1], svc);
}

#[tokio::test]
async fn bad_input_is_a_clear_400_unknown_ids_404_and_never_a_5xx() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &["read"], &[]).await;
    for query in [
        "cursor=%%%",
        "cursor=not-base64!",
        "cursor=AAEC",
        "limit=0",
        "limit=201",
        "limit=ten",
        "q=has%20space",
        "q=%00",
        "colour=red",
    ] {
        let r = call(
            &app,
            &admin,
            Method::GET,
            &format!("/admin/clients?{query}"),
            None,
        )
        .await;
        assert_admin_error(r, 400, "invalid_request").await;
    }
    let long = "x".repeat(129);
    let r = call(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/clients?q={long}"),
        None,
    )
    .await;
    assert_admin_error(r, 400, "invalid_request").await;

    let too_many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
    for (change, mentions) in [
        (json!({"redirect_uris": ["not a uri"]}), "redirect"),
        (
            json!({"grant_types": ["authorization_code"], "redirect_uris": ["http://evil.example/cb"]}),
            "redirect URI",
        ),
        (json!({"scopes": too_many}), "at most 100"),
        (json!({"audiences": ["a".repeat(2049)]}), "longer than"),
        (
            json!({"grant_types": ["teleport"]}),
            "invalid client change",
        ),
        (
            json!({"grant_types": ["client_credentials"]}),
            "public client",
        ),
        (json!({"scopes": "read"}), "invalid client change"),
        (json!({"colour": "red"}), "unknown field"),
        (json!({"id": "other"}), "cannot be changed"),
        (json!({"public": false}), "cannot be changed"),
        (json!({"capabilities": ["events"]}), "public client"),
        (json!({"refresh_reuse_grace": 301}), "at most 300"),
    ] {
        let r = call(
            &app,
            &admin,
            Method::PATCH,
            "/admin/clients/web",
            Some(change.clone()),
        )
        .await;
        let body = assert_admin_error(r, 400, "invalid_request").await;
        let d = body["error_description"].as_str().unwrap();
        assert!(d.contains(mentions), "{change}: {d}");
    }
    // Nothing changed.
    let (_, web) = json_of(&app, &admin, Method::GET, "/admin/clients/web", None).await;
    assert_eq!(web["scopes"], json!(["read"]));
    assert_eq!(web["grant_types"], json!(["password", "refresh_token"]));
    // A body that is no object, or no JSON.
    let r = app
        .with_bearer(Method::PATCH, "/admin/clients/web", &admin)
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 400, "invalid_request").await;

    for id in ["nobody", "%20", "..%2F..%2Fetc", "%27%20OR%201%3D1"] {
        for (method, path, body) in client_routes(id).into_iter().skip(1) {
            let r = call(&app, &admin, method.clone(), &path, body).await;
            assert_admin_error(r, 404, "not_found").await;
        }
    }
    for (method, path, body) in client_routes("%FF%FE").into_iter().skip(1) {
        let r = call(&app, &admin, method, &path, body).await;
        assert_admin_error(r, 400, "invalid_request").await;
    }
    // A public client has no secret to rotate.
    let r = call(
        &app,
        &admin,
        Method::POST,
        "/admin/clients/web/secret",
        None,
    )
    .await;
    assert_admin_error(r, 409, "conflict").await;
}

#[tokio::test]
async fn only_an_administrator_may_call_the_client_routes() {
    let app = TestApp::spawn().await;
    app.admin_console().await;
    app.client("web", true, &["password"], &["read"], &[]).await;
    app.user("mallory", PASSWORD, &["editor"]).await;
    let user = app.login("console", "mallory", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path, body) in client_routes("web") {
        let r = call(&app, &user, method.clone(), &path, body.clone()).await;
        assert_admin_error(r, 403, "insufficient_scope").await;
        let mut anonymous = app.http.request(method.clone(), app.url(&path));
        if let Some(b) = &body {
            anonymous = anonymous.json(b);
        }
        let r = anonymous.send().await.unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    // Still there, unchanged.
    let client = app.core.clients.client("web").await.unwrap().unwrap();
    assert_eq!(client.scopes, ["read"]);
}

#[tokio::test]
async fn a_change_is_validated_as_a_registration_audited_and_seen_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let secret = app.service("svc", &["introspect"]).await;
    // Cached by a first use.
    let token = app.client_token("svc", &secret).await;
    assert_eq!(app.introspect("svc", &secret, &token).await.status(), 200);

    let change = json!({
        "capabilities": [],
        "roles": ["reporter"],
        "scopes": ["reports:read", "reports:read"],
        "refresh_reuse_grace": 0,
    });
    let (status, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["capabilities"], json!([]));
    assert_eq!(body["roles"], json!(["reporter"]));
    assert_eq!(
        body["scopes"],
        json!(["reports:read"]),
        "deduplicated as at registration"
    );
    assert_eq!(body["refresh_reuse_grace"], 0);
    assert_eq!(body["revoked_sessions"], 0);
    assert_eq!(body["forgotten_codes"], 0);
    // The capability is gone from the cache too: introspection is refused now.
    let r = app.introspect("svc", &secret, &token).await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
    // `null` resets a member to its default.
    let (_, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(json!({"refresh_reuse_grace": null})),
    )
    .await;
    assert!(body.get("refresh_reuse_grace").is_none(), "{body}");

    let (_, trail) = json_of(&app, &admin, Method::GET, "/admin/audit?target=svc", None).await;
    let entry = &trail["entries"][1];
    assert_eq!(entry["action"], "update_client", "{trail}");
    assert_eq!(entry["via"], "api");
    assert_eq!(
        entry["details"]["changed"],
        json!({"capabilities": [], "roles": ["reporter"], "scopes": ["reports:read"], "refresh_reuse_grace": 0})
    );
    assert!(
        !trail.to_string().contains(&secret),
        "no secret in the trail"
    );
}
