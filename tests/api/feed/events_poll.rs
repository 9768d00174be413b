//! `GET /events` as JSON long-poll, bad positions and waits, and the retention window.

use std::time::{Duration, Instant};

use reqwest::{Method, header};
use serde_json::{Value, json};
use tessera::domain::permissions::Change;

use crate::feed::events::{Sse, assert_event_shape};
use crate::support::*;

/// `GET /events{query}` with `Accept: application/json`; returns status, body and elapsed time.
async fn poll(app: &TestApp, token: &str, query: &str) -> (u16, Value, Duration) {
    let start = Instant::now();
    let r = app
        .with_bearer(Method::GET, &format!("/events{query}"), token)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 200 || status == 400 || status == 410 {
        assert_eq!(r.headers()["content-type"], "application/json", "{query}");
    }
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, start.elapsed())
}

/// Asserts `{"events": [...], "next_after": N}` exactly; returns the events.
fn assert_page(body: &Value) -> Vec<Value> {
    let obj = body.as_object().expect("JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["events", "next_after"], "{body}");
    let events = body["events"].as_array().unwrap().clone();
    events.iter().for_each(assert_event_shape);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ascending ids: {ids:?}"
    );
    if let Some(last) = ids.last() {
        assert_eq!(body["next_after"], *last, "{body}");
    }
    events
}

async fn roles(app: &TestApp, sub: &str, roles: &[&str]) {
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            sub,
            Change::Roles(roles.iter().map(|s| s.to_string()).collect()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_backlog_is_answered_at_once() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    let sid = jwt_parts(
        app.login("app", "alice", PASSWORD).await["access_token"]
            .as_str()
            .unwrap(),
    )
    .1["sid"]
        .clone();
    roles(&app, &alice, &["one"]).await;
    roles(&app, &alice, &["two"]).await;

    let (status, body, elapsed) = poll(&app, &rs, "?after=0&wait=30").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        elapsed < Duration::from_secs(5),
        "did not wait: {elapsed:?}"
    );
    let events = assert_page(&body);
    let summary: Vec<(Value, Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["type"].clone(),
                e["sid"].clone(),
                e["ver"].clone(),
                e["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                json!("user.roles_changed"),
                json!(null),
                json!(2),
                json!("roles_changed")
            ),
            (
                json!("session.revoked"),
                sid,
                json!(null),
                json!("roles_changed")
            ),
            (
                json!("user.roles_changed"),
                json!(null),
                json!(3),
                json!("roles_changed")
            ),
        ]
    );
    let first = events[0]["id"].as_i64().unwrap();
    let last = events[2]["id"].as_i64().unwrap();

    // From the middle: only what follows.
    let (_, body, _) = poll(&app, &rs, &format!("?after={first}")).await;
    assert_eq!(assert_page(&body).len(), 2);
    // Caught up, no wait: an empty page that keeps the position.
    let (status, body, _) = poll(&app, &rs, &format!("?after={last}&wait=0")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"events": [], "next_after": last}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_wakes_when_an_event_arrives() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    roles(&app, &alice, &["before"]).await;
    let (_, body, _) = poll(&app, &rs, "?after=0").await;
    let after = body["next_after"].as_i64().unwrap();

    let core = app.core.clone();
    let sub = alice.clone();
    let changer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        core.users
            .change_user(
                &tessera::domain::audit::Actor::cli(),
                &sub,
                Change::Roles(vec!["during".into()]),
            )
            .await
            .unwrap();
    });
    let (status, body, elapsed) = poll(&app, &rs, &format!("?after={after}&wait=10")).await;
    changer.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let events = assert_page(&body);
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["roles"], json!(["during"]));
    assert_eq!(events[0]["id"], after + 1);
    eprintln!(
        "long-poll woke after {:.0}ms (event committed at ~300ms)",
        elapsed.as_secs_f64() * 1000.0
    );
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "returned before the 10 s wait ended: {elapsed:?}"
    );
}

#[tokio::test]
async fn with_nothing_new_the_poll_answers_empty_when_the_wait_ends() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    roles(&app, &alice, &["x"]).await;
    let (_, body, _) = poll(&app, &rs, "?after=0").await;
    let after = body["next_after"].as_i64().unwrap();
    assert!(after > 0);

    let (status, body, elapsed) = poll(&app, &rs, &format!("?after={after}&wait=1")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"events": [], "next_after": after}));
    assert!(
        elapsed >= Duration::from_millis(900),
        "it waited: {elapsed:?}"
    );

    // Without `after` the poll starts from now: the backlog is not replayed.
    let (status, body, _) = poll(&app, &rs, "?wait=0").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"events": [], "next_after": after}));
}

#[tokio::test]
async fn bad_positions_and_waits_get_a_clean_400() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    roles(&app, &alice, &["x"]).await;
    for query in [
        "?after=-1",
        "?after=abc",
        "?after=1.5",
        "?after=1e3",
        "?after=99999999999999999999999",
        "?after=0x10",
        "?wait=-5",
        "?wait=abc",
        "?wait=1.5",
        "?wait=99999999999999999999999",
        "?after=0&after=1",
        "?after=%ZZ",
        "?after=0&wait=-1",
    ] {
        for accept in ["application/json", "text/event-stream"] {
            let r = app
                .with_bearer(Method::GET, &format!("/events{query}"), &rs)
                .header(header::ACCEPT, accept)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{query} ({accept})");
            assert_eq!(r.headers()["content-type"], "application/json");
            let body: Value = r.json().await.unwrap();
            let mut keys: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["error", "error_description"], "{query}: {body}");
            assert_eq!(body["error"], "invalid_request", "{query}");
        }
    }
    for bad in ["-1", "abc", "1.5"] {
        let r = app
            .with_bearer(Method::GET, "/events", &rs)
            .header("last-event-id", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "Last-Event-ID {bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }

    // Absurd but well-formed: a huge wait is capped, and a backlog still answers at once.
    let (status, body, elapsed) = poll(&app, &rs, "?after=0&wait=1000000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(assert_page(&body).len(), 1);
    assert!(elapsed < Duration::from_secs(5));
}

/// A cursor past the newest event (a log restored from an older backup, a cursor kept
/// from another deployment) would skip every event up to it: 410, as for a cursor behind
/// the retention window, on long-poll and SSE alike, so the subscriber resynchronises.
#[tokio::test]
async fn a_cursor_past_the_newest_event_answers_410() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    roles(&app, &alice, &["a"]).await;
    let (_, body, _) = poll(&app, &rs, "?after=0").await;
    let newest = assert_page(&body).last().expect("one event")["id"]
        .as_i64()
        .unwrap();
    for after in [newest + 1, newest + 1000, i64::MAX] {
        let (status, body, _) = poll(&app, &rs, &format!("?after={after}&wait=0")).await;
        assert_eq!(status, 410, "after={after}: {body}");
        assert_eq!(body["error"], "resync_required", "{body}");
        assert_eq!(body["next_after"], newest, "{body}");
        let r = app
            .with_bearer(Method::GET, "/events", &rs)
            .header(header::ACCEPT, "text/event-stream")
            .header("last-event-id", after.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 410, "Last-Event-ID {after}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["next_after"], newest, "{body}");
    }
    // The newest id itself is a valid place to resume: the next event arrives.
    let mut sse = Sse::open(&app, &rs, &format!("?after={newest}"), None).await;
    roles(&app, &alice, &["b"]).await;
    assert_eq!(sse.next_within(Duration::from_secs(5)).await.id, newest + 1);
    let (status, body, _) = poll(&app, &rs, &format!("?after={newest}&wait=0")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(assert_page(&body)[0]["id"], newest + 1);
}

#[tokio::test]
async fn resuming_from_before_the_retention_window_answers_410() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    for r in ["a", "b", "c"] {
        roles(&app, &alice, &[r]).await;
    }
    let (_, body, _) = poll(&app, &rs, "?after=0").await;
    let ids: Vec<i64> = assert_page(&body)
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let [first, second, newest] = ids[..] else {
        panic!("three events: {body}")
    };
    // What housekeeping does once events are older than the retention window.
    let mut tx = app.core.db.begin().await.unwrap();
    let removed = tessera::store::events::prune(&mut tx, app.core.clock.now() + 10)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(removed, 2, "all but the newest");

    for after in [0, first] {
        let (status, body, _) = poll(&app, &rs, &format!("?after={after}")).await;
        assert_eq!(status, 410, "{body}");
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["error", "error_description", "next_after"]);
        assert_eq!(body["error"], "resync_required");
        assert_eq!(body["next_after"], newest);
    }
    let r = app
        .with_bearer(Method::GET, "/events", &rs)
        .header("last-event-id", first.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);

    // From the newest id removed, nothing was lost: resumption works.
    let (status, body, _) = poll(&app, &rs, &format!("?after={second}")).await;
    assert_eq!(status, 200);
    assert_eq!(assert_page(&body)[0]["id"], newest);
    let mut sse = Sse::open(&app, &rs, &format!("?after={second}"), None).await;
    assert_eq!(sse.next_within(Duration::from_secs(5)).await.id, newest);
}

/// The longest wait (30 s, the cap) equals the default request timeout (30 s), so an
/// idle long-poll at the cap is cut by the timeout layer with an empty 503 instead of
/// answering `{"events": [], ...}`. Shown here with a 2 s timeout and `wait=3`.
#[tokio::test]
async fn a_long_poll_never_outlives_the_request_timeout() {
    let Feed { app, rs, .. } = Feed::start(&[("request_timeout", "2")]).await;
    let (_, body, _) = poll(&app, &rs, "?after=0").await;
    let after = body["next_after"].as_i64().unwrap();
    let (status, body, elapsed) = poll(&app, &rs, &format!("?after={after}&wait=3")).await;
    assert!(elapsed < Duration::from_secs(5));
    assert_eq!(
        status, 200,
        "an idle long-poll must end with an empty page before the request timeout, got {status} {body} after {elapsed:?}"
    );
    assert_eq!(body, json!({"events": [], "next_after": after}));
}

#[tokio::test]
async fn a_long_backlog_comes_in_pages_with_nothing_lost() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    for i in 0..150 {
        roles(&app, &alice, &[&format!("r{i}")]).await;
    }
    let mut after = 0;
    let mut vers = Vec::new();
    let mut pages = Vec::new();
    loop {
        let (status, body, _) = poll(&app, &rs, &format!("?after={after}&wait=0")).await;
        assert_eq!(status, 200);
        let events = assert_page(&body);
        if events.is_empty() {
            assert_eq!(body["next_after"], after);
            break;
        }
        pages.push(events.len());
        vers.extend(events.iter().map(|e| e["ver"].as_i64().unwrap()));
        after = body["next_after"].as_i64().unwrap();
    }
    assert!(pages.len() >= 2, "paged: {pages:?}");
    assert_eq!(vers, (2..=151).collect::<Vec<i64>>());
}
