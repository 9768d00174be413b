//! `GET /admin/sessions` (by user or client, keyset paged) and `GET /admin/events`
//! (the log by subject, type and time, paged): every filter, every bad input a 400.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::api::assert_admin_error;
use super::users_admin::admin_call;
use crate::support::*;

async fn get(app: &TestApp, admin: &str, path: &str) -> Value {
    let (status, body) = admin_call(app, admin, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every page of `path` (which has a query), following `next_cursor`; the items under `key`.
async fn all_pages(app: &TestApp, admin: &str, path: &str, key: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let page = get(app, admin, &page_path).await;
        let got = page[key].as_array().unwrap();
        assert!(got.len() <= 2, "{page}");
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn sessions_by_user_and_by_client_page_through_every_live_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &[], &[]).await;
    app.client("cli", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let bob = app.user("bob", PASSWORD, &[]).await;
    let sid = |login: Value| {
        jwt_parts(login["access_token"].as_str().unwrap()).1["sid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut alices = HashSet::new();
    let revoked = sid(app.login("web", "alice", PASSWORD).await);
    alices.insert(revoked.clone());
    for _ in 0..2 {
        alices.insert(sid(app.login("web", "alice", PASSWORD).await));
    }
    alices.insert(sid(app.login("cli", "alice", PASSWORD).await));
    let bobs = sid(app.login("web", "bob", PASSWORD).await);
    let (s, _) = admin_call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/admin/sessions/{revoked}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    alices.remove(&revoked);

    let listed = all_pages(
        &app,
        &admin,
        &format!("/admin/sessions?user={alice}&limit=2"),
        "sessions",
    )
    .await;
    let sids: HashSet<String> = listed
        .iter()
        .map(|s| s["sid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sids, alices);
    assert_eq!(listed.len(), 3, "no session twice");
    assert!(listed.iter().all(|s| s["user_id"] == alice.as_str()));
    let mut keys: Vec<&str> = listed[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "created_at",
            "expires_at",
            "last_used_at",
            "sid",
            "user_id"
        ]
    );

    let web = all_pages(
        &app,
        &admin,
        "/admin/sessions?client=web&limit=2",
        "sessions",
    )
    .await;
    let users: HashSet<&str> = web.iter().map(|s| s["user_id"].as_str().unwrap()).collect();
    assert_eq!(users, HashSet::from([alice.as_str(), bob.as_str()]));
    assert!(web.iter().any(|s| s["sid"] == bobs.as_str()));
    assert!(
        web.iter()
            .all(|s| s["client_id"] == "web" && s["sid"] != revoked.as_str())
    );
    let cli = get(&app, &admin, "/admin/sessions?client=cli").await;
    assert_eq!(cli["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(cli["next_cursor"], Value::Null);
}

#[tokio::test]
async fn sessions_bad_input_is_a_clear_4xx() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let unknown = uuid::Uuid::new_v4();
    let long = "c".repeat(300);
    for (query, status, error) in [
        (String::new(), 400, "invalid_request"),
        (format!("user={alice}&client=web"), 400, "invalid_request"),
        ("user=alice".into(), 400, "invalid_request"),
        (format!("user={alice}&cursor=nope"), 400, "invalid_request"),
        (format!("user={alice}&limit=0"), 400, "invalid_request"),
        (format!("user={alice}&limit=201"), 400, "invalid_request"),
        (format!("user={alice}&colour=red"), 400, "invalid_request"),
        (format!("client={long}"), 400, "invalid_request"),
        ("client=a%00b".into(), 400, "invalid_request"),
        (format!("user={unknown}"), 404, "not_found"),
        ("client=nobody".into(), 404, "not_found"),
    ] {
        let r = app
            .with_bearer(Method::GET, &format!("/admin/sessions?{query}"), &admin)
            .send()
            .await
            .unwrap();
        let body = assert_admin_error(r, status, error).await;
        assert!(
            !body["error_description"].as_str().unwrap().is_empty(),
            "{query}"
        );
    }
}

#[tokio::test]
async fn the_event_log_by_subject_type_and_time_paged_newest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let bob = app.user("bob", PASSWORD, &[]).await;
    for (who, roles) in [(&alice, "a1"), (&bob, "b1"), (&alice, "a2"), (&alice, "a3")] {
        let (s, _) = admin_call(
            &app,
            &admin,
            Method::PUT,
            &format!("/admin/users/{who}/roles"),
            Some(json!({"roles": [roles]})),
        )
        .await;
        assert_eq!(s, 200);
    }
    app.login("web", "alice", PASSWORD).await;
    let (s, _) = admin_call(
        &app,
        &admin,
        Method::POST,
        &format!("/admin/users/{alice}/disable"),
        None,
    )
    .await;
    assert_eq!(s, 200);

    let mine = all_pages(
        &app,
        &admin,
        &format!("/admin/events?sub={alice}&limit=2"),
        "events",
    )
    .await;
    let kinds: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "session.revoked",
            "user.disabled",
            "user.roles_changed",
            "user.roles_changed",
            "user.roles_changed"
        ]
    );
    let ids: Vec<i64> = mine.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(mine[4]["roles"], json!(["a1"]));

    let changes = get(&app, &admin, "/admin/events?type=user.roles_changed").await;
    let subs: Vec<&str> = changes["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sub"].as_str().unwrap())
        .collect();
    assert_eq!(
        subs,
        [alice.as_str(), alice.as_str(), bob.as_str(), alice.as_str()]
    );
    let bobs = get(
        &app,
        &admin,
        &format!("/admin/events?sub={bob}&type=user.roles_changed"),
    )
    .await;
    assert_eq!(bobs["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&app, &admin, "/admin/events?type=user.enabled").await["events"],
        json!([])
    );

    // Time: RFC 3339 or Unix seconds, `since` inclusive, `until` exclusive.
    let every = get(&app, &admin, "/admin/events?limit=200").await;
    let every = every["events"].as_array().unwrap();
    let all = every.len();
    let oldest = every[all - 1]["at"].as_str().unwrap().to_string();
    let newest = tessera_proto::parse_rfc3339(every[0]["at"].as_str().unwrap()).unwrap();
    let oldest_unix = tessera_proto::parse_rfc3339(&oldest).unwrap();
    for since in [oldest.clone(), oldest_unix.to_string()] {
        let q = format!("/admin/events?limit=200&since={}", urlencoding(&since));
        assert_eq!(
            get(&app, &admin, &q).await["events"]
                .as_array()
                .unwrap()
                .len(),
            all,
            "{q}"
        );
        let q = format!("/admin/events?until={}", urlencoding(&since));
        assert_eq!(get(&app, &admin, &q).await["events"], json!([]), "{q}");
    }
    let later = newest + 1;
    assert_eq!(
        get(&app, &admin, &format!("/admin/events?since={later}")).await["events"],
        json!([])
    );
    assert_eq!(
        get(
            &app,
            &admin,
            &format!("/admin/events?until={later}&limit=200")
        )
        .await["events"]
            .as_array()
            .unwrap()
            .len(),
        all
    );
}

fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn event_log_bad_input_is_a_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let long = "x".repeat(257);
    for query in [
        "cursor=abc".to_string(),
        "cursor=-1".into(),
        "cursor=99999999999999999999".into(),
        "since=yesterday".into(),
        "since=2026-01-01".into(),
        "until=-5".into(),
        "since=1e9".into(),
        "since=999999999999".into(),
        format!("sub={long}"),
        format!("type={long}"),
        "type=a%0Ab".into(),
        "sub=".into(),
        "limit=abc".into(),
        "limit=0".into(),
        "after=3".into(),
    ] {
        let r = app
            .with_bearer(Method::GET, &format!("/admin/events?{query}"), &admin)
            .send()
            .await
            .unwrap();
        let what = query.clone();
        let body = assert_admin_error(r, 400, "invalid_request").await;
        assert!(
            !body["error_description"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
}
