//! `GET /admin/users/{id}` in full, `POST .../enable`, `DELETE /admin/users/{id}` and
//! `PUT .../password`: each audited, each announced on the feed.

use reqwest::Method;
use serde_json::{Value, json};

use super::api::assert_admin_error;
use crate::support::*;

/// `method path` as the admin, with an optional JSON body; the status and the body
/// (`null` when empty).
pub(crate) async fn admin_call(
    app: &TestApp,
    admin: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.with_bearer(method, path, admin);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

/// The actions of the audit entries about `target`, newest first.
pub(crate) async fn audited(app: &TestApp, admin: &str, target: &str) -> Vec<String> {
    let (status, body) = admin_call(
        app,
        admin,
        Method::GET,
        &format!("/admin/audit?target={target}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

fn types(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_user_in_full_has_roles_ver_sessions_and_recent_events() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let path = format!("/admin/users/{alice}");
    let (_, set) = admin_call(
        &app,
        &admin,
        Method::PUT,
        &format!("{path}/roles"),
        Some(json!({"roles": ["editor"]})),
    )
    .await;
    assert_eq!(set["ver"], 2);
    let login = app.login("web", "alice", PASSWORD).await;
    let sid = jwt_parts(login["access_token"].as_str().unwrap()).1["sid"].clone();

    let (status, user) = admin_call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["id"], alice);
    assert_eq!(user["username"], "alice");
    assert_eq!(user["roles"], json!(["editor"]));
    assert_eq!(user["ver"], 2);
    assert_eq!(user["disabled"], false);
    assert!(
        user["created_at"].as_str().unwrap().ends_with('Z'),
        "{user}"
    );
    let sessions = user["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{user}");
    assert_eq!(sessions[0]["sid"], sid);
    assert_eq!(sessions[0]["client_id"], "web");
    assert_eq!(user["sessions_next_cursor"], Value::Null);
    // The newest first, as `/events` serves them.
    assert_eq!(types(&user["events"]), ["user.roles_changed"]);
    assert_eq!(user["events"][0]["sub"], alice);
    assert_eq!(user["events"][0]["ver"], 2);
    assert_eq!(user["events"][0]["roles"], json!(["editor"]));

    // At most 20 events, the newest.
    for i in 0..25 {
        let roles = json!({"roles": [format!("r{i}")]});
        let (s, _) = admin_call(
            &app,
            &admin,
            Method::PUT,
            &format!("{path}/roles"),
            Some(roles),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (_, user) = admin_call(&app, &admin, Method::GET, &path, None).await;
    let events = user["events"].as_array().unwrap();
    assert_eq!(events.len(), 20);
    assert_eq!(events[0]["roles"], json!(["r24"]));
    assert!(events[0]["id"].as_i64() > events[19]["id"].as_i64());
}

#[tokio::test]
async fn a_user_in_full_lists_the_first_50_sessions_and_says_where_the_rest_are() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let db = app.core.db.writer();
    for i in 0..53 {
        crate::sql::exec(
            db,
            "INSERT INTO refresh_families (id, user_id, client_id, scope, audience, created_at, last_used_at, expires_at)
             VALUES ($1, $2, 'console', '', '[]', 0, 0, 9999999999)",
            &[(&format!("{i:08x}-0000-4000-8000-000000000000")).into(), (&alice).into()],
        )
        .await;
    }
    let (_, user) = admin_call(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/users/{alice}"),
        None,
    )
    .await;
    assert_eq!(user["sessions"].as_array().unwrap().len(), 50);
    let cursor = user["sessions_next_cursor"].as_str().unwrap();
    assert_eq!(cursor, user["sessions"][49]["sid"].as_str().unwrap());
    let (status, rest) = admin_call(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/sessions?user={alice}&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rest}");
    let sids: Vec<&str> = rest["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        [
            "00000032-0000-4000-8000-000000000000",
            "00000033-0000-4000-8000-000000000000",
            "00000034-0000-4000-8000-000000000000"
        ]
    );
}

#[tokio::test]
async fn enable_gives_a_disabled_user_back_their_sign_in_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let path = format!("/admin/users/{alice}");
    let (status, _) =
        admin_call(&app, &admin, Method::POST, &format!("{path}/disable"), None).await;
    assert_eq!(status, 200);
    let refused = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(refused.status(), 400);

    let (status, user) =
        admin_call(&app, &admin, Method::POST, &format!("{path}/enable"), None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["ver"], 3, "created 1, disabled 2, enabled 3");
    let login = app.login("web", "alice", PASSWORD).await;
    assert_eq!(
        jwt_parts(login["access_token"].as_str().unwrap()).1["ver"],
        3
    );

    // Enabling an enabled user: 200, the user unchanged, nothing announced or audited.
    let (status, again) =
        admin_call(&app, &admin, Method::POST, &format!("{path}/enable"), None).await;
    assert_eq!(status, 200);
    assert_eq!(again, user);
    let (_, detail) = admin_call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(types(&detail["events"]), ["user.enabled", "user.disabled"]);
    assert_eq!(detail["events"][0]["ver"], 3);
    assert_eq!(
        audited(&app, &admin, &alice).await,
        ["enable_user", "disable_user", "create_user"]
    );
}

#[tokio::test]
async fn delete_revokes_everything_erases_the_user_and_frees_the_name() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let secret = app.service("rs", &["introspect"]).await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let login = app.login("web", "alice", PASSWORD).await;
    let access = login["access_token"].as_str().unwrap();
    let refresh = login["refresh_token"].as_str().unwrap();
    let sid = jwt_parts(access).1["sid"].as_str().unwrap().to_string();
    let userinfo = || {
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(access)
            .send()
    };
    assert_eq!(userinfo().await.unwrap().status(), 200);

    // What else a user leaves: a browser session, a consent, an authorization code.
    let writer = app.core.db.writer();
    for (sql, args) in [
        (
            "INSERT INTO browser_sessions (hash, user_id, auth_time, expires_at) VALUES ($1, $2, 0, 9999999999)",
            vec![vec![1u8; 32].into(), (&alice).into()],
        ),
        (
            "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, 'web', 'openid', 0)",
            vec![(&alice).into()],
        ),
        (
            "INSERT INTO authorization_codes (hash, client_id, user_id, authz_version, redirect_uri, code_challenge, scope, auth_time, created_at, expires_at)
             VALUES ($1, 'web', $2, 1, 'https://app.example/cb', 'x', 'openid', 0, 0, 9999999999)",
            vec![vec![2u8; 32].into(), (&alice).into()],
        ),
    ] {
        crate::sql::exec(writer, sql, &args).await;
    }
    let left = async |table: &str, column: &str| {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        crate::sql::one::<(i64,)>(writer, &sql, &[(&alice).into()])
            .await
            .0
    };
    let tables = [
        ("users", "id"),
        ("refresh_families", "user_id"),
        ("browser_sessions", "user_id"),
        ("consents", "user_id"),
        ("authorization_codes", "user_id"),
    ];
    for (table, column) in tables {
        assert_eq!(left(table, column).await, 1, "{table} before");
    }

    let path = format!("/admin/users/{alice}");
    let (status, body) = admin_call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!((status, &body), (204, &Value::Null));
    for (table, column) in tables {
        assert_eq!(left(table, column).await, 0, "{table} after");
    }

    // Every token is dead at once.
    let info: Value = app
        .introspect("rs", &secret, access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info, json!({"active": false}));
    let info: Value = app
        .introspect("rs", &secret, refresh)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info, json!({"active": false}));
    assert_eq!(userinfo().await.unwrap().status(), 401);
    assert_oauth_error(app.refresh("web", refresh).await, 400, "invalid_grant").await;
    // The user is gone: 404 everywhere, and nothing of them is left in the database.
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/enable")),
    ] {
        let r = app.with_bearer(method, &p, &admin).send().await.unwrap();
        assert_admin_error(r, 404, "not_found").await;
    }
    let db = app.core.db.writer();
    assert!(
        tessera::store::users::by_id(db, &alice)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tessera::store::sessions::family(db, &sid)
            .await
            .unwrap()
            .is_none()
    );
    // The log keeps the id alone: verifiers see the disable and the revocation.
    let (_, log) = admin_call(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/events?sub={alice}"),
        None,
    )
    .await;
    assert_eq!(types(&log["events"]), ["session.revoked", "user.disabled"]);
    assert_eq!(log["events"][0]["sid"], sid.as_str());
    assert_eq!(log["events"][1]["reason"], "user_deleted");
    assert!(!log.to_string().contains("alice\""), "{log}");
    let (_, trail) = admin_call(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/audit?target={alice}"),
        None,
    )
    .await;
    assert_eq!(trail["entries"][0]["action"], "delete_user");
    assert_eq!(
        trail["entries"][0]["details"],
        json!({"sessions_revoked": 1})
    );

    // The name is free; its new holder is someone else.
    let again = app.user("alice", "another password", &[]).await;
    assert_ne!(again, alice);
    let login = app.login("web", "alice", "another password").await;
    assert_eq!(
        jwt_parts(login["access_token"].as_str().unwrap()).1["sub"],
        again
    );
}

#[tokio::test]
async fn an_operator_password_reset_ends_sessions_and_audits_no_secret() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    let login = app.login("web", "alice", PASSWORD).await;
    let path = format!("/admin/users/{alice}/password");
    let new = "a fresh operator-set password";
    let (status, user) = admin_call(
        &app,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"password": new})),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["ver"], 2);
    assert_oauth_error(
        app.refresh("web", login["refresh_token"].as_str().unwrap())
            .await,
        400,
        "invalid_grant",
    )
    .await;
    app.login("web", "alice", new).await;
    let old = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert_oauth_error(old, 400, "invalid_grant").await;
    let (_, detail) = admin_call(
        &app,
        &admin,
        Method::GET,
        &format!("/admin/users/{alice}"),
        None,
    )
    .await;
    assert_eq!(
        types(&detail["events"]),
        ["session.revoked", "user.password_changed"]
    );
    let (_, trail) = admin_call(&app, &admin, Method::GET, "/admin/audit", None).await;
    assert_eq!(trail["entries"][0]["action"], "set_password");
    assert!(!trail.to_string().contains(new), "{trail}");

    // Bad bodies: a clear 400.
    for body in [
        json!({"password": "short"}),
        json!({"password": 12345678}),
        json!({"pass": new}),
        json!({"password": new, "extra": 1}),
    ] {
        let r = app
            .with_bearer(Method::PUT, &path, &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_admin_error(r, 400, "invalid_request").await;
    }
}
