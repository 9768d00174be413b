//! An event stream lives only as long as its authority (token `exp`, signing key,
//! session, user, client capability) and ends with a final `end` event saying why;
//! stream and long-poll slots are shared out so that one token cannot starve its
//! caller's other tokens.

use std::time::Duration;

use reqwest::{Method, Response, header};
use serde_json::{Value, json};

use crate::support::*;

async fn open_sse(app: &TestApp, token: &str) -> Response {
    app.with_bearer(Method::GET, "/events", token)
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap()
}

/// Reads an SSE response to its end (at most `within`); returns the data of its
/// final `end` event and the types of the events before it.
async fn read_to_end(mut resp: Response, within: Duration) -> (Value, Vec<String>) {
    assert_eq!(resp.status(), 200, "SSE status");
    let mut text = String::new();
    let read = tokio::time::timeout(within, async {
        while let Some(chunk) = resp.chunk().await.expect("SSE read") {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the stream did not end within {within:?}:\n{text}"
    );
    let blocks: Vec<&str> = text
        .split("\n\n")
        .filter(|b| b.lines().any(|l| !l.starts_with(':') && !l.is_empty()))
        .collect();
    let (last, before) = blocks.split_last().expect("an end event");
    let field = |block: &str, name: &str| {
        block
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map(str::to_string)
    };
    assert_eq!(field(last, "event").as_deref(), Some("end"), "{text}");
    assert_eq!(
        field(last, "id"),
        None,
        "the end event carries no id: {text}"
    );
    let data: Value = serde_json::from_str(&field(last, "data").expect("data")).unwrap();
    assert!(data["error_description"].is_string(), "{data}");
    let kinds = before
        .iter()
        .filter_map(|b| field(b, "event"))
        .collect::<Vec<_>>();
    (data, kinds)
}

/// `rs`'s token re-signed with `claims` changed (a different `jti`, an older `iat`).
fn minted(app: &TestApp, token: &str, jti: &str, iat_shift: i64) -> String {
    let (_, mut claims) = jwt_parts(token);
    claims["jti"] = json!(jti);
    claims["iat"] = json!(claims["iat"].as_i64().unwrap() + iat_shift);
    app.core.keys.current().active.sign(&claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_access_token_expires() {
    let Feed { app, .. } = Feed::start(&[("access_token_ttl", "2")]).await;
    let secret = app.service("gw", &["events"]).await;
    let token = app.client_token("gw", &secret).await;
    let exp = jwt_parts(&token).1["exp"].as_i64().unwrap();
    let resp = open_sse(&app, &token).await;
    let (end, _) = read_to_end(resp, Duration::from_secs(6)).await;
    assert_eq!(end["reason"], "token_expired", "{end}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(now >= exp, "ended at {now}, before exp {exp}");
    // And the token opens nothing any more: refused, or (within the verifier's
    // clock-skew leeway) a stream that ends at once.
    let again = open_sse(&app, &token).await;
    if again.status() != 401 {
        let (end, kinds) = read_to_end(again, Duration::from_secs(2)).await;
        assert_eq!(end["reason"], "token_expired", "{end}");
        assert!(kinds.is_empty(), "{kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_stream_ends_when_its_session_is_revoked_or_the_user_disabled() {
    let Feed { app, alice, .. } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let first = app.login("app", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let second = app.login("app", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = jwt_parts(&first).1["sid"].as_str().unwrap().to_string();
    let one = open_sse(&app, &first).await;
    let two = open_sse(&app, &second).await;

    let r = app
        .with_bearer(Method::DELETE, &format!("/admin/sessions/{sid}"), &admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (end, kinds) = read_to_end(one, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "session_revoked", "{end}");
    assert_eq!(
        kinds,
        ["session.revoked"],
        "the revocation itself is delivered, then the end"
    );

    let r = app
        .with_bearer(
            Method::POST,
            &format!("/admin/users/{alice}/disable"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (end, kinds) = read_to_end(two, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "user_disabled", "{end}");
    // The other session's revocation (an event of this user), then the disable, and
    // nothing of the same change after it (the disable also revokes this session).
    assert_eq!(kinds, ["session.revoked", "user.disabled"]);
}

/// A role change under policy `revoke` writes `user.roles_changed` and then revokes
/// the user's sessions: a stream of one of them delivers the role change (why it was
/// signed out), then its own session's revocation, then the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_stream_ended_by_a_role_change_delivers_the_change_first() {
    let Feed { app, alice, .. } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let token = app.login("app", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let stream = open_sse(&app, &token).await;
    let r = crate::admin::permissions::put_roles(&app, &admin, &alice, json!(["auditor"])).await;
    assert_eq!(r.status(), 200);
    let (end, kinds) = read_to_end(stream, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "session_revoked", "{end}");
    assert_eq!(kinds, ["user.roles_changed", "session.revoked"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_stream_ends_when_it_loses_the_events_capability() {
    // What the feed does not announce (a client changed in the database) is found by
    // the stream's periodic re-read of its caller.
    let Feed { app, rs, .. } = Feed::start(&[("stream_recheck", "1")]).await;
    let resp = open_sse(&app, &rs).await;
    crate::sql::exec(
        app.core.db.writer(),
        "UPDATE clients SET capabilities = '[\"introspect\"]' WHERE id = 'rs'",
        &[],
    )
    .await;
    let (end, _) = read_to_end(resp, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "capability_revoked", "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_signing_key_is_revoked() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let resp = open_sse(&app, &rs).await;
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .json(&json!({"revoke_current": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (end, _) = read_to_end(resp, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "key_revoked", "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_token_cannot_starve_its_callers_fresh_tokens() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    // A token holds at most four of the caller's eight slots: a fifth (a
    // reconnect) replaces its first.
    let first = open_sse(&app, &rs).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let r = open_sse(&app, &rs).await;
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let (end, _) = read_to_end(first, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "superseded", "{end}");
    assert_eq!(app.core.events.open_streams(), 4);

    // An old token fills the caller's other four.
    let old = minted(&app, &rs, "old", -100);
    for _ in 0..4 {
        let r = open_sse(&app, &old).await;
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    // Full: a token no fresher than the oldest is refused...
    let peer = minted(&app, &rs, "peer", -100);
    let r = open_sse(&app, &peer).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("caller"),
        "{body}"
    );
    // ...and the real gateway's fresh token takes the oldest token's slot.
    let fresh = minted(&app, &rs, "fresh", 0);
    let r = open_sse(&app, &fresh).await;
    assert_eq!(r.status(), 200);
    let evicted = open.remove(4);
    let (end, _) = read_to_end(evicted, Duration::from_secs(5)).await;
    assert_eq!(end["reason"], "superseded", "{end}");
    // Another caller is not affected by rs's streams.
    let alice = app.login("app", "alice", PASSWORD).await;
    let mine = open_sse(&app, alice["access_token"].as_str().unwrap()).await;
    assert_eq!(mine.status(), 200);
    assert_eq!(app.core.events.open_streams(), 9);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("\ntessera_sse_subscribers 9\n"),
        "{metrics}"
    );
    drop((r, mine, open));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_are_capped_per_token_and_per_caller() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    let poll = |token: String| {
        let req = app
            .with_bearer(Method::GET, "/events?wait=3", &token)
            .header(header::ACCEPT, "application/json");
        async move { req.send().await.unwrap() }
    };
    let tokens: Vec<String> = std::iter::once(rs.clone())
        .chain((0..3).map(|i| minted(&app, &rs, &format!("t{i}"), 0)))
        .collect();
    let mut pending = Vec::new();
    for t in &tokens {
        for _ in 0..2 {
            pending.push(tokio::spawn(poll(t.clone())));
        }
    }
    // Every one of the eight is in flight (a condition, not a delay).
    let arrived = eventually(Duration::from_secs(5), || async {
        app.core.events.open_polls() >= 8
    })
    .await;
    assert!(arrived, "the polls did not arrive");
    let r = poll(rs.clone()).await;
    assert_eq!(r.status(), 429, "a third poll of one token");
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_polls", "{body}");
    let r = poll(minted(&app, &rs, "ninth", 0)).await;
    assert_eq!(r.status(), 429, "a ninth poll of one caller");
    // They finish at their deadline and give their slots back.
    for p in pending {
        assert_eq!(p.await.unwrap().status(), 200);
    }
    assert_eq!(app.core.events.open_polls(), 0);
    let r = app
        .with_bearer(Method::GET, "/events", &rs)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
