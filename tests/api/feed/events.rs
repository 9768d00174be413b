//! `GET /events` as Server-Sent Events: a small SSE reader, delivery after a permission
//! change and its latency, resumption with `Last-Event-ID`, order under concurrent writes.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, header};
use serde_json::{Value, json};

use crate::support::*;

/// The keys of every event on the feed (`SecurityEvent` in openapi.yaml).
pub(crate) const EVENT_KEYS: [&str; 9] = [
    "at", "id", "kid", "reason", "roles", "sid", "sub", "type", "ver",
];

/// Asserts the event's exact key set and the shape of `at`.
pub(crate) fn assert_event_shape(e: &Value) {
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, EVENT_KEYS, "event keys: {e}");
    assert!(e["id"].as_i64().is_some_and(|id| id > 0), "{e}");
    let at = e["at"].as_str().unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "RFC 3339 UTC second: {at}"
    );
}

/// One event read off an SSE stream.
#[derive(Debug)]
pub(crate) struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
    pub received: Instant,
}

/// An open `text/event-stream` response, read chunk by chunk.
pub(crate) struct Sse {
    resp: Response,
    buf: String,
}

impl Sse {
    /// Opens `/events{query}` as SSE; asserts 200 and the content type.
    pub(crate) async fn open(
        app: &TestApp,
        token: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        // Each stream on its own new connection, as subscribers hold them.
        let mut req = app
            .streams
            .get(app.url(&format!("/events{query}")))
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "SSE status");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// Opens `url` (an `/events` URL of any server) as SSE with `token`.
    pub(crate) async fn open_url(http: &reqwest::Client, url: &str, token: &str) -> Self {
        let resp = http
            .get(url)
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "SSE status");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments and heartbeats skipped); panics after `within`.
    pub(crate) async fn next_within(&mut self, within: Duration) -> SseEvent {
        tokio::time::timeout(within, self.next())
            .await
            .unwrap_or_else(|_| panic!("no SSE event within {within:?}"))
    }

    /// Reads until `what` (raw text: comments included) and consumes through it;
    /// returns how long that took. Panics after 5 s of nothing.
    pub(crate) async fn read_until(&mut self, what: &str) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(at) = self.buf.find(what) {
                self.buf.drain(..at + what.len());
                return started.elapsed();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("nothing within 5 s waiting for {what:?}"))
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event (comments and heartbeats skipped).
    pub(crate) async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(e) = parse_block(&block) {
                    return e;
                }
                continue;
            }
            let chunk = self
                .resp
                .chunk()
                .await
                .expect("SSE read")
                .expect("SSE stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// Parses one SSE block; `None` for a comment-only block (a heartbeat).
fn parse_block(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, None);
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse().expect("numeric SSE id")),
            "event" => event = Some(value.to_string()),
            "data" => data = Some(serde_json::from_str(value).expect("SSE data is JSON")),
            other => panic!("unexpected SSE field {other:?} in {block:?}"),
        }
    }
    let data: Value = data?;
    let e = SseEvent {
        id: id.expect("SSE event without id"),
        event: event.expect("SSE event without type"),
        data,
        received: Instant::now(),
    };
    assert_event_shape(&e.data);
    assert_eq!(e.data["id"], e.id, "id: line matches the JSON id");
    assert_eq!(e.data["type"], e.event, "event: line matches the JSON type");
    Some(e)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_delivers_a_role_change_and_the_revocation_after_an_admin_call() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let sid = app.login("app", "alice", PASSWORD).await["access_token"]
        .as_str()
        .map(|t| jwt_parts(t).1["sid"].as_str().unwrap().to_string())
        .unwrap();
    let mut sse = Sse::open(&app, &rs, "", None).await;

    let start = Instant::now();
    let r = app
        .with_bearer(Method::PUT, &format!("/admin/users/{alice}/roles"), &admin)
        .json(&json!({"roles": ["writer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let changed = sse.next_within(Duration::from_secs(5)).await;
    let revoked = sse.next_within(Duration::from_secs(5)).await;
    let latency = changed.received - start;
    eprintln!(
        "SSE latency, admin PUT roles -> user.roles_changed received: {:.2}ms (session.revoked: {:.2}ms)",
        millis(latency),
        millis(revoked.received - start)
    );
    assert!(latency < Duration::from_secs(5));

    assert_eq!(changed.event, "user.roles_changed");
    let mut expected = changed.data.clone();
    expected["at"] = Value::Null;
    assert_eq!(
        expected,
        json!({"id": changed.id, "type": "user.roles_changed", "sub": alice, "sid": null,
               "ver": 2, "roles": ["writer"], "reason": "roles_changed", "kid": null, "at": null})
    );
    assert_eq!(revoked.event, "session.revoked");
    assert_eq!(revoked.id, changed.id + 1);
    let mut expected = revoked.data.clone();
    expected["at"] = Value::Null;
    assert_eq!(
        expected,
        json!({"id": revoked.id, "type": "session.revoked", "sub": alice, "sid": sid,
               "ver": null, "roles": null, "reason": "roles_changed", "kid": null, "at": null})
    );
}

#[tokio::test]
async fn last_event_id_resumes_with_exactly_the_missed_events_in_order() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let put_roles = |roles: Value| {
        app.with_bearer(Method::PUT, &format!("/admin/users/{alice}/roles"), &admin)
            .json(&json!({ "roles": roles }))
            .send()
    };
    let mut sse = Sse::open(&app, &rs, "", None).await;
    assert_eq!(put_roles(json!(["a"])).await.unwrap().status(), 200);
    let seen = sse.next_within(Duration::from_secs(5)).await;
    assert_eq!(
        (seen.event.as_str(), &seen.data["ver"]),
        ("user.roles_changed", &json!(2))
    );
    drop(sse);

    // Missed while disconnected: three changes.
    for roles in [json!(["b"]), json!(["c"]), json!(["d"])] {
        assert_eq!(put_roles(roles).await.unwrap().status(), 200);
    }
    let mut resumed = Sse::open(&app, &rs, "", Some(&seen.id.to_string())).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = resumed.next_within(Duration::from_secs(5)).await;
        got.push((e.id, e.data["roles"].clone(), e.data["ver"].clone()));
    }
    assert_eq!(
        got,
        vec![
            (seen.id + 1, json!(["b"]), json!(3)),
            (seen.id + 2, json!(["c"]), json!(4)),
            (seen.id + 3, json!(["d"]), json!(5)),
        ]
    );
    // Nothing else was queued: the next event is a new one.
    assert_eq!(put_roles(json!(["e"])).await.unwrap().status(), 200);
    let next = resumed.next_within(Duration::from_secs(5)).await;
    assert_eq!((next.id, &next.data["roles"]), (seen.id + 4, &json!(["e"])));

    // `?after=` resumes the same way; `Last-Event-ID` wins over it on a reconnect.
    let mut by_query = Sse::open(&app, &rs, &format!("?after={}", seen.id + 2), None).await;
    assert_eq!(
        by_query.next_within(Duration::from_secs(5)).await.id,
        seen.id + 3
    );
    let last = (seen.id + 3).to_string();
    let mut both = Sse::open(&app, &rs, "?after=0", Some(&last)).await;
    assert_eq!(
        both.next_within(Duration::from_secs(5)).await.id,
        seen.id + 4
    );
}

#[tokio::test]
async fn without_a_position_the_stream_starts_from_now() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let put = |roles: Value| {
        app.with_bearer(Method::PUT, &format!("/admin/users/{alice}/roles"), &admin)
            .json(&json!({ "roles": roles }))
            .send()
    };
    assert_eq!(put(json!(["old"])).await.unwrap().status(), 200);
    let mut sse = Sse::open(&app, &rs, "", None).await;
    assert_eq!(put(json!(["new"])).await.unwrap().status(), 200);
    let e = sse.next_within(Duration::from_secs(5)).await;
    assert_eq!(
        e.data["roles"],
        json!(["new"]),
        "the backlog is not replayed"
    );
}

/// A quiet stream gets a heartbeat comment every `stream_heartbeat` (proxies and
/// tessera-verify take a silent stream for a dead one); an event resets the wait.
#[tokio::test]
async fn a_quiet_stream_gets_heartbeats_and_an_event_resets_the_wait() {
    let Feed { app, rs, alice } = Feed::start(&[("stream_heartbeat", "1")]).await;
    let mut sse = Sse::open(&app, &rs, "", None).await;
    // Quiet: a heartbeat, and another.
    sse.read_until(": keep-alive\n\n").await;
    sse.read_until(": keep-alive\n\n").await;
    // An event goes out at once, and the next heartbeat comes a full second after it.
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &alice,
            tessera::domain::permissions::Change::Roles(vec!["x".into()]),
        )
        .await
        .unwrap();
    sse.read_until("event: user.roles_changed\n").await;
    let quiet = sse.read_until(": keep-alive\n\n").await;
    assert!(
        quiet >= Duration::from_millis(900),
        "a heartbeat {quiet:?} after an event: the event did not reset the wait"
    );
}

/// The stream subscribes before it reads the backlog: an event committed while a
/// subscriber is catching up is delivered once, never skipped, never repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sse_never_skips_or_repeats_while_changes_race_the_backlog_read() {
    use tessera::domain::permissions::Change;
    const CHANGES: i64 = 300;
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    let core = app.core.clone();
    let sub = alice.clone();
    let writer = tokio::spawn(async move {
        for i in 0..CHANGES {
            core.users
                .change_user(
                    &tessera::domain::audit::Actor::cli(),
                    &sub,
                    Change::Roles(vec![format!("r{i}")]),
                )
                .await
                .unwrap();
        }
    });
    // Join while the writer is busy; several subscribers at different moments.
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(Sse::open(&app, &rs, "?after=0", None).await);
        tokio::task::yield_now().await;
    }
    for (n, sse) in streams.iter_mut().enumerate() {
        for expected in 1..=CHANGES {
            let e = sse.next_within(Duration::from_secs(5)).await;
            assert_eq!(e.data["ver"], expected + 1, "stream {n}");
            assert_eq!(e.data["roles"], json!([format!("r{}", expected - 1)]));
        }
    }
    writer.await.unwrap();
}
