//! `GET /admin/users` and `tessera user list|show`: search, filters, keyset paging.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::api::assert_admin_error;
use crate::support::*;

/// `GET /admin/users?{query}` as root; the status and the body.
async fn list(app: &TestApp, admin: &str, query: &str) -> (u16, Value) {
    let r = app
        .with_bearer(Method::GET, &format!("/admin/users?{query}"), admin)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn names(body: &Value) -> Vec<&str> {
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn search_by_prefix_role_and_status() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user("Alice", PASSWORD, &["editor"]).await;
    app.user("alfred", PASSWORD, &["reader"]).await;
    app.user("bob", PASSWORD, &["editor", "ops"]).await;
    let r = app
        .with_bearer(
            Method::POST,
            &format!("/admin/users/{alice}/disable"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (status, all) = list(&app, &admin, "").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(names(&all), ["alfred", "Alice", "bob", "root"]);
    assert_eq!(all["next_cursor"], Value::Null);
    let first = &all["users"][1];
    assert_eq!(first["id"], alice);
    assert_eq!(first["roles"], json!(["editor"]));
    assert_eq!(first["ver"], 2, "the disable bumped it");
    assert_eq!(first["disabled"], true);
    assert!(
        first["created_at"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );

    // The prefix matches as usernames do: up to ASCII letter case.
    assert_eq!(
        names(&list(&app, &admin, "prefix=AL").await.1),
        ["alfred", "Alice"]
    );
    assert_eq!(names(&list(&app, &admin, "q=ali").await.1), ["Alice"]);
    assert_eq!(
        names(&list(&app, &admin, "prefix=zed").await.1),
        Vec::<&str>::new()
    );
    assert_eq!(
        names(&list(&app, &admin, "role=editor").await.1),
        ["Alice", "bob"]
    );
    assert_eq!(
        names(&list(&app, &admin, "role=edit").await.1),
        Vec::<&str>::new()
    );
    assert_eq!(
        names(&list(&app, &admin, "disabled=true").await.1),
        ["Alice"]
    );
    assert_eq!(
        names(&list(&app, &admin, "disabled=false&role=editor").await.1),
        ["bob"]
    );
    // A LIKE wildcard is an ordinary character.
    assert_eq!(
        names(&list(&app, &admin, "prefix=%25").await.1),
        Vec::<&str>::new()
    );
    assert_eq!(
        names(&list(&app, &admin, "prefix=_").await.1),
        Vec::<&str>::new()
    );
}

#[tokio::test]
async fn pages_miss_and_repeat_no_user_even_when_users_are_added_between_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..23 {
        app.user(&format!("user{i:02}"), PASSWORD, &[]).await;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = Vec::new();
    for page in 0.. {
        let query = match &cursor {
            Some(c) => format!("limit=5&cursor={c}"),
            None => "limit=5".into(),
        };
        let (status, body) = list(&app, &admin, &query).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["users"].as_array().unwrap().len() <= 5);
        seen.extend(names(&body).into_iter().map(String::from));
        // Users created behind and ahead of the cursor after the first page.
        if page == 1 {
            for name in ["aaa-behind", "user15b", "zzz-ahead"] {
                app.user(name, PASSWORD, &[]).await;
                added.push(name);
            }
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no user twice: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(seen, sorted, "in username order");
    for i in 0..23 {
        assert!(
            seen.contains(&format!("user{i:02}")),
            "user{i:02} missed: {seen:?}"
        );
    }
    assert!(seen.contains(&"root".to_string()));
    // The one added behind the cursor is on no later page; those ahead of it are.
    assert!(!seen.contains(&"aaa-behind".to_string()));
    assert!(seen.contains(&"zzz-ahead".to_string()) && seen.contains(&"user15b".to_string()));

    // A full last page says so: no cursor to an empty page.
    let (_, body) = list(&app, &admin, "prefix=user0&limit=10").await;
    assert_eq!(names(&body).len(), 10);
    assert_eq!(body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn limit_bounds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..3 {
        app.user(&format!("u{i}"), PASSWORD, &[]).await;
    }
    let (status, body) = list(&app, &admin, "limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(names(&body), ["root"]);
    assert!(body["next_cursor"].is_string());
    let (status, body) = list(&app, &admin, "limit=200").await;
    assert_eq!(status, 200);
    assert_eq!(names(&body).len(), 4);
}

#[tokio::test]
async fn bad_values_are_400_invalid_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let nul_cursor = tessera::crypto::b64(b"a\0b");
    let bad_utf8_cursor = tessera::crypto::b64(&[0xff, 0xfe]);
    let long = "a".repeat(257);
    for query in [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "limit=%2B5",
        "limit=",
        "limit=1&limit=2",
        "disabled=yes",
        "disabled=",
        "cursor=not*base64",
        &format!("cursor={nul_cursor}"),
        &format!("cursor={bad_utf8_cursor}"),
        "prefix=a%00",
        &format!("prefix={long}"),
        "role=",
        "role=a,b",
        "role=%07",
        "prefix=a&q=b",
        "page=2",
    ] {
        let r = app
            .with_bearer(Method::GET, &format!("/admin/users?{query}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body = assert_admin_error(r, 400, "invalid_request").await;
        assert!(
            !body["error_description"].as_str().unwrap().is_empty(),
            "{query}: {body}"
        );
    }
    // Bytes that are not UTF-8 are refused, not searched for as U+FFFD.
    let (status, body) = list(&app, &admin, "prefix=%FF").await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = list(&app, &admin, "limit=0").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    let (_, body) = list(&app, &admin, "cursor=*").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("cursor")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_list_and_show_in_text_and_json() {
    let app = TestApp::spawn().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let bob = app.user("bob", PASSWORD, &["editor", "ops"]).await;
    app.user("bobby", PASSWORD, &["reader"]).await;
    app.user("carol", PASSWORD, &["editor"]).await;
    app.login("web", "bob", PASSWORD).await;
    app.login("web", "bob", PASSWORD).await;

    // One JSON object per user per line (issue 24's contract for scripts).
    let lines = |out: &str| -> Vec<Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let usernames = |users: &[Value]| -> Vec<String> {
        users
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, out, err) = app.cli(&["user", "list", "--prefix", "BOB", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let users = lines(&out);
    assert_eq!(usernames(&users), ["bob", "bobby"]);
    assert!(!err.contains("more users"), "{err}");
    let first = &users[0];
    assert_eq!(first["id"], bob);
    assert_eq!(first["roles"], json!(["editor", "ops"]));
    assert_eq!(first["ver"], 1);
    assert_eq!(first["disabled"], false);
    assert!(first["created_at"].is_string());

    let (code, out, err) = app.cli(
        &["user", "list", "--role", "editor", "--limit", "1", "--json"],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(usernames(&lines(&out)), ["bob"]);
    assert!(err.contains("more users"), "a note that more match: {err}");

    let (code, _, err) = app.cli(&["user", "disable", "carol"], None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = app.cli(&["user", "list", "--disabled"], None);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 2, "a header and carol: {out}");
    assert!(
        rows[0].starts_with("ID") && rows[0].contains("USERNAME"),
        "{out}"
    );
    assert!(
        rows[1].contains("carol") && rows[1].contains("disabled"),
        "{out}"
    );
    let (_, out, _) = app.cli(&["user", "list", "--enabled"], None);
    assert!(out.contains("bobby") && !out.contains("carol"), "{out}");
    let (code, _, _) = app.cli(&["user", "list", "--limit", "0"], None);
    assert_ne!(code, 0);
    let (code, _, _) = app.cli(&["user", "list", "--disabled", "--enabled"], None);
    assert_ne!(code, 0);

    let (code, out, err) = app.cli(&["user", "show", "BOB", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["id"], bob);
    assert_eq!(doc["username"], "bob");
    assert_eq!(doc["live_sessions"], 2);
    let (code, out, err) = app.cli(&["user", "show", "bob"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&bob) && out.contains("editor,ops"), "{out}");
    assert!(out.contains("live sessions: 2"), "{out}");
    let (code, out, err) = app.cli(&["user", "show", "nobody"], None);
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains("nobody"), "{err}");
}
