//! Who sees what on `GET /events`, and changes from outside the server (the CLI).

use std::time::{Duration, Instant};

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::feed::events::Sse;
use crate::support::{Feed, PASSWORD, assert_invalid_token};

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test]
async fn a_users_feed_never_shows_another_users_events() {
    let Feed { app, rs, alice } = Feed::start(&[("permission_change_policy", "reissue")]).await;
    let admin = app.admin_token().await;
    let bob = app.user("bob", PASSWORD, &["reader"]).await;
    let alice_at = app.login("app", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let put = |sub: &str, roles: Value| {
        app.with_bearer(Method::PUT, &format!("/admin/users/{sub}/roles"), &admin)
            .json(&json!({ "roles": roles }))
            .send()
    };
    let mut mine = Sse::open(&app, &alice_at, "", None).await;
    let mut all = Sse::open(&app, &rs, "", None).await;
    assert_eq!(put(&bob, json!(["x"])).await.unwrap().status(), 200);
    assert_eq!(put(&alice, json!(["y"])).await.unwrap().status(), 200);
    assert_eq!(put(&bob, json!(["z"])).await.unwrap().status(), 200);
    assert_eq!(put(&alice, json!(["w"])).await.unwrap().status(), 200);

    // The service sees all four, in order.
    let mut subs = Vec::new();
    for _ in 0..4 {
        subs.push(all.next_within(Duration::from_secs(5)).await.data["sub"].clone());
    }
    assert_eq!(
        subs,
        vec![json!(bob), json!(alice), json!(bob), json!(alice)]
    );
    // Alice sees only hers, bob's in between never appear.
    for roles in [json!(["y"]), json!(["w"])] {
        let e = mine.next_within(Duration::from_secs(5)).await;
        assert_eq!((&e.data["sub"], &e.data["roles"]), (&json!(alice), &roles));
    }
    // Replaying from the start shows the same: nothing of bob's.
    let r = app
        .with_bearer(Method::GET, "/events?after=0", &alice_at)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{body}");
    assert!(events.iter().all(|e| e["sub"] == json!(alice)), "{body}");
}

#[tokio::test]
async fn the_feed_needs_a_token_and_for_a_client_the_events_capability() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    let r = app.http.get(app.url("/events")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="tessera""#);

    let r = app
        .with_bearer(Method::GET, "/events", "not.a.token")
        .send()
        .await
        .unwrap();
    assert_invalid_token(r, "a malformed token").await;

    // A service with `introspect` only may not read the feed.
    let secret = app.service("other", &["introspect"]).await;
    let other = app.client_token("other", &secret).await;
    for accept in ["text/event-stream", "application/json"] {
        let r = app
            .with_bearer(Method::GET, "/events?after=0", &other)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{accept}");
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with(r#"Bearer realm="tessera", error="insufficient_scope""#),
            "{challenge}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }
    // The one with `events` may.
    let r = app
        .with_bearer(Method::GET, "/events?after=0", &rs)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_change_reaches_a_running_servers_feed() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    let bob = app.user("bob", PASSWORD, &["reader"]).await;
    let mut sse = Sse::open(&app, &rs, "", None).await;

    let start = Instant::now();
    let (code, out, err) =
        tokio::task::block_in_place(|| app.cli(&["user", "roles", "bob", "--add", "x"], None));
    let cli_done = start.elapsed();
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "", "nothing on stdout");

    let e = sse.next_within(Duration::from_secs(5)).await;
    eprintln!(
        "CLI change -> SSE receipt: {:.1}ms (the CLI process itself took {:.1}ms)",
        millis(e.received - start),
        millis(cli_done)
    );
    assert_eq!(e.event, "user.roles_changed");
    assert_eq!(
        (&e.data["sub"], &e.data["roles"], &e.data["ver"]),
        (&json!(bob), &json!(["reader", "x"]), &json!(2))
    );
}

#[tokio::test]
async fn an_open_stream_outlives_the_request_timeout() {
    let Feed { app, rs, alice } = Feed::start(&[("request_timeout", "300ms")]).await;
    let mut sse = Sse::open(&app, &rs, "", None).await;
    // Time must pass beyond the request timeout (the timeout layer keeps real time).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admin = app.admin_token().await;
    let r = app
        .with_bearer(Method::PUT, &format!("/admin/users/{alice}/roles"), &admin)
        .json(&json!({"roles": ["later"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e = sse.next_within(Duration::from_secs(5)).await;
    assert_eq!(e.data["roles"], json!(["later"]));
}

#[tokio::test]
async fn a_disabled_users_token_cannot_read_the_feed() {
    let Feed { app, alice, .. } = Feed::start(&[]).await;
    let at = app.login("app", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .with_bearer(Method::GET, "/events?after=0", &at)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &alice,
            tessera::domain::permissions::Change::Disable,
        )
        .await
        .unwrap();
    for accept in ["application/json", "text/event-stream"] {
        let r = app
            .with_bearer(Method::GET, "/events?after=0", &at)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{accept}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
}
