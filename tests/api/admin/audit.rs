//! The audit trail: every administrative change records who made it, what and when,
//! in the change's own transaction; `GET /admin/audit` and `tessera audit` read it.

use reqwest::Method;
use serde_json::{Value, json};

use super::api::assert_admin_error;
use crate::support::*;

/// `GET /admin/audit?{query}`; the status and the body.
async fn trail(app: &TestApp, admin: &str, query: &str) -> (u16, Value) {
    let r = app
        .with_bearer(Method::GET, &format!("/admin/audit?{query}"), admin)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn actions(body: &Value) -> Vec<&str> {
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    admin: &str,
    body: Option<Value>,
) -> Value {
    let mut req = app.with_bearer(method, path, admin);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    if !status.is_success() {
        panic!("{path}: {status} {}", r.text().await.unwrap());
    }
    if r.status() == 204 {
        Value::Null
    } else {
        r.json().await.unwrap()
    }
}

/// The id of the user named `name`, through the admin API.
async fn id_of(app: &TestApp, admin: &str, name: &str) -> String {
    let r = send(
        app,
        Method::GET,
        &format!("/admin/users?q={name}"),
        admin,
        None,
    )
    .await;
    r["users"][0]["id"].as_str().unwrap().to_string()
}

// Multi-threaded: a rotation generates keys in `block_in_place`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_api_change_is_recorded_with_the_admin_as_actor() {
    // Keys older than the next key's lead (jwks_max_age, 600 s): a rotation may happen now.
    let app = TestApp::with_keys_aged(std::time::Duration::from_secs(700), &[]).await;
    let admin = app.admin_token().await;
    let root = id_of(&app, &admin, "root").await;
    let (_, before) = trail(&app, &admin, "").await;
    let seen = before["entries"].as_array().unwrap().len();

    let carol = send(
        &app,
        Method::POST,
        "/admin/users",
        &admin,
        Some(json!({"username": "carol", "password": "carol's secret pw", "roles": ["viewer"]})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let roles = format!("/admin/users/{carol}/roles");
    send(
        &app,
        Method::PUT,
        &roles,
        &admin,
        Some(json!({"roles": ["editor"]})),
    )
    .await;
    app.login("console", "carol", "carol's secret pw").await;
    let sessions = send(
        &app,
        Method::GET,
        &format!("/admin/users/{carol}/sessions"),
        &admin,
        None,
    )
    .await;
    let sid = sessions[0]["sid"].as_str().unwrap().to_string();
    send(
        &app,
        Method::DELETE,
        &format!("/admin/sessions/{sid}"),
        &admin,
        None,
    )
    .await;
    send(
        &app,
        Method::POST,
        &format!("/admin/users/{carol}/disable"),
        &admin,
        None,
    )
    .await;
    let client = send(
        &app,
        Method::POST,
        "/admin/clients",
        &admin,
        Some(json!({"id": "svc", "grant_types": ["client_credentials"], "roles": ["reporter"]})),
    )
    .await;
    let secret = client["client_secret"].as_str().unwrap().to_string();
    send(&app, Method::POST, "/admin/keys/rotate", &admin, None).await;

    let r = app
        .with_bearer(Method::GET, "/admin/audit", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    // Nothing secret, nothing personal: no password, no client secret, no username.
    for secret in [secret.as_str(), "carol's secret pw", "carol"] {
        assert!(!text.contains(secret), "{secret} in the trail: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let entries = body["entries"].as_array().unwrap();
    let new = &entries[..entries.len() - seen];
    assert_eq!(
        actions(&json!({ "entries": new })),
        [
            "rotate_keys",
            "create_client",
            "disable_user",
            "revoke_session",
            "set_roles",
            "create_user"
        ],
        "newest first: {body}"
    );
    for e in new {
        assert_eq!(e["actor"], root, "{e}");
        assert_eq!(e["via"], "api", "{e}");
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let [rotate, created, disable, revoke, roles, create] = new else {
        unreachable!()
    };
    assert_eq!(rotate["details"]["revoke_current"], false);
    assert_eq!(created["target"], "svc");
    assert_eq!(created["details"]["roles"], json!(["reporter"]));
    assert_eq!(disable["target"], carol);
    assert_eq!(revoke["target"], sid);
    assert_eq!(revoke["details"]["user"], carol);
    assert_eq!(roles["target"], carol);
    assert_eq!(roles["details"], json!({"roles": ["editor"]}));
    assert_eq!(create["target"], carol);
    assert_eq!(create["details"], json!({"roles": ["viewer"]}));
}

#[tokio::test]
async fn a_change_refused_or_failed_records_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, before) = trail(&app, &admin, "").await;
    let nobody = uuid::Uuid::new_v4();
    let r = app
        .with_bearer(Method::PUT, &format!("/admin/users/{nobody}/roles"), &admin)
        .json(&json!({"roles": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 404, "not_found").await;
    let r = app
        .with_bearer(Method::POST, "/admin/users", &admin)
        .json(&json!({"username": "ROOT", "password": "long enough pw"}))
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 409, "conflict").await;
    let r = app
        .with_bearer(Method::DELETE, &format!("/admin/sessions/{nobody}"), &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 404, "not_found").await;
    // Too early to rotate: the next key has not been published long enough.
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 409, "conflict").await;
    assert_eq!(trail(&app, &admin, "").await.1, before);
}

#[tokio::test]
async fn pages_filters_and_bad_queries() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = send(
            &app,
            Method::POST,
            "/admin/users",
            &admin,
            Some(json!({"username": format!("u{i}"), "password": "long enough pw"})),
        )
        .await;
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    // Paging newest first through the five creations, with an entry added between pages.
    let (status, first) = trail(&app, &admin, "action=create_user&limit=2").await;
    assert_eq!(status, 200, "{first}");
    let targets = |b: &Value| -> Vec<String> {
        b["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(targets(&first), [ids[4].clone(), ids[3].clone()]);
    send(
        &app,
        Method::POST,
        "/admin/users",
        &admin,
        Some(json!({"username": "late", "password": "long enough pw"})),
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = trail(
        &app,
        &admin,
        &format!("action=create_user&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(targets(&second), [ids[2].clone(), ids[1].clone()]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let (_, third) = trail(
        &app,
        &admin,
        &format!("action=create_user&limit=2&cursor={cursor}"),
    )
    .await;
    // u0, then root (created by the test harness, through the command line's path).
    assert_eq!(targets(&third)[0], ids[0]);
    let (_, about) = trail(&app, &admin, &format!("target={}", ids[3])).await;
    assert_eq!(targets(&about), [ids[3].clone()]);
    let (_, none) = trail(&app, &admin, "actor=nobody").await;
    assert_eq!(none, json!({"entries": [], "next_cursor": null}));

    for bad in [
        "cursor=abc",
        "cursor=",
        "cursor=-1",
        "limit=0",
        "limit=201",
        "limit=%2B5",
        "target=",
        "target=a%00b",
        "actor=a%0Ab",
        "unknown=1",
    ] {
        let r = app
            .with_bearer(Method::GET, &format!("/admin/audit?{bad}"), &admin)
            .send()
            .await
            .unwrap();
        assert_admin_error(r, 400, "invalid_request").await;
    }
    let long = "x".repeat(257);
    let r = app
        .with_bearer(Method::GET, &format!("/admin/audit?action={long}"), &admin)
        .send()
        .await
        .unwrap();
    assert_admin_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn only_an_admin_reads_the_trail() {
    let app = TestApp::spawn().await;
    app.admin_token().await;
    app.user("eve", PASSWORD, &["editor"]).await;
    let eve = app.login("console", "eve", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .with_bearer(Method::GET, "/admin/audit", &eve)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app.http.get(app.url("/admin/audit")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_command_line_records_its_os_user_and_reads_the_trail() {
    let app = TestApp::spawn().await;
    let bob = app.user("bob", PASSWORD, &[]).await;
    let mut env = app.cli_env();
    env.push(("USER".into(), "ops-alice".into()));
    let dir = app.dir.path().to_path_buf();
    let run = |args: &'static [&'static str]| {
        let env = env.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || run_cli(&env, &dir, args, None))
    };
    let (code, _, err) = run(&["user", "roles", "bob", "--set", "a,b"])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["audit", "--json", "--limit", "1"]).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let e = &lines[0];
    assert_eq!(e["actor"], "cli:ops-alice");
    assert_eq!(e["via"], "cli");
    assert_eq!(e["action"], "set_roles");
    assert_eq!(e["target"], bob);
    assert_eq!(e["details"], json!({"roles": ["a", "b"]}));
    assert!(err.contains("older entries"), "{err}");

    let (code, out, err) = run(&["audit", "--target", "nobody"]).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "the header alone: {out}");
    let (code, out, _) = run(&["audit", "--action", "set_roles"]).await.unwrap();
    assert_eq!(code, 0);
    let row = out.lines().nth(1).unwrap();
    assert!(row.contains("cli:ops-alice") && row.contains(&bob), "{out}");
    let (code, _, err) = run(&["audit", "--limit", "0"]).await.unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("limit"), "{err}");
}

/// Every admin list refuses a query that is not UTF-8 once percent-decoded (it would
/// otherwise search for U+FFFD and answer an empty 200), and still refuses an anonymous
/// caller first.
#[tokio::test]
async fn the_admin_lists_refuse_a_query_that_is_not_utf8() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for path in [
        "/admin/users?q=%FF",
        "/admin/users?q=ab%C3",
        "/admin/audit?target=%FF",
        "/admin/events?type=%FFuser",
        "/admin/sessions?client=%E2%82",
        "/admin/clients?q=%80",
    ] {
        let r = app
            .with_bearer(Method::GET, path, &admin)
            .send()
            .await
            .unwrap();
        let body = assert_admin_error(r, 400, "invalid_request").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("UTF-8"),
            "{path}: {body}"
        );
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}: anonymous first");
    }
    // Percent-encoded UTF-8 is fine, and a lone `%` is a literal.
    for path in [
        "/admin/users?q=%C3%A9",
        "/admin/audit?action=50%25",
        "/admin/users?q=a%",
    ] {
        let r = app
            .with_bearer(Method::GET, path, &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}
