//! Push delivery (RFC 8935) to a real endpoint on 127.0.0.1: latency, order, pause,
//! a receiver that is down or rejects, and a restart in the middle.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::support::*;

/// The roles each accepted SET carries, in arrival order (every SET verified by jose).
async fn roles_received(t: &Transmitter, rx: &Receiver) -> Vec<Value> {
    let claims = t.verified(rx.sets()).await;
    claims
        .iter()
        .map(|c| event_of(c).1["claims"]["roles"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_role_change_is_pushed_within_a_second_with_the_registered_authorization() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    t.stream(json!({"method": PUSH, "endpoint_url": rx.url, "authorization_header": "Bearer receiver-secret"})).await;
    let changed = Instant::now();
    t.roles(&sub, &["editor"]).await;
    assert!(
        rx.wait_for(1, Duration::from_secs(1)).await,
        "not pushed within a second"
    );
    eprintln!("role change → push accepted in {:?}", changed.elapsed());
    let (set, headers) = rx.got.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/secevent+jwt");
    assert_eq!(headers["authorization"], "Bearer receiver-secret");
    let claims = t.verified(vec![set]).await;
    let (kind, body) = event_of(&claims[0]);
    assert_eq!(kind, CLAIMS_CHANGE);
    assert_eq!(body["claims"]["roles"], json!(["editor"]));
    // The stream's configuration never shows the authorization header back.
    let (_, streams) = t.call(reqwest::Method::GET, "/ssf/stream", None).await;
    assert!(
        !streams.to_string().contains("receiver-secret"),
        "{streams}"
    );
    let stream = streams[0]["stream_id"].as_str().unwrap();
    let status = t.status(stream).await;
    assert_eq!(status["tessera_delivery"]["delivered"], 1);
    // The same figures per stream on the operator port.
    let metrics = t.app.metrics().await;
    for line in [
        format!("tessera_ssf_delivered{{stream=\"{stream}\",client=\"rx\"}} 1"),
        format!("tessera_ssf_held{{stream=\"{stream}\",client=\"rx\"}} 0"),
        format!("tessera_ssf_lag{{stream=\"{stream}\",client=\"rx\"}} 0"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn ssf_a_paused_stream_holds_and_delivers_in_order_when_enabled() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    t.set_status(&stream, "paused").await;
    for role in ["r1", "r2", "r3"] {
        t.roles(&sub, &[role]).await;
    }
    // Held, not sent.
    assert!(
        eventually(Duration::from_secs(5), || async {
            t.status(&stream).await["tessera_delivery"]["held"] == 3
        })
        .await
    );
    assert_eq!(rx.count(), 0);
    t.set_status(&stream, "enabled").await;
    assert!(rx.wait_for(3, Duration::from_secs(5)).await);
    assert_eq!(
        roles_received(&t, &rx).await,
        [json!(["r1"]), json!(["r2"]), json!(["r3"])]
    );

    // Disabled: nothing held, nothing sent; enabled again, only what comes after.
    t.set_status(&stream, "disabled").await;
    t.roles(&sub, &["lost"]).await;
    t.set_status(&stream, "enabled").await;
    t.roles(&sub, &["r4"]).await;
    assert!(rx.wait_for(4, Duration::from_secs(5)).await);
    assert_eq!(roles_received(&t, &rx).await[3], json!(["r4"]));
}

#[tokio::test]
async fn ssf_a_receiver_down_then_back_gets_every_set_in_order_and_its_errors_are_recorded() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    rx.set_mode(Mode::Down);
    for i in 0..5 {
        t.roles(&sub, &[&format!("r{i}")]).await;
    }
    // Retried, and the failure shows in the status.
    assert!(
        eventually(Duration::from_secs(5), || async {
            *rx.attempts.lock().unwrap() >= 3
        })
        .await
    );
    let status = t.status(&stream).await;
    assert_eq!(
        status["tessera_delivery"]["last_error"]["status"], 503,
        "{status}"
    );
    assert!(status["tessera_delivery"]["failed"].as_i64().unwrap() >= 2);
    rx.set_mode(Mode::Accept);
    assert!(
        rx.wait_for(5, Duration::from_secs(10)).await,
        "not every SET arrived"
    );
    let expected: Vec<Value> = (0..5).map(|i| json!([format!("r{i}")])).collect();
    assert_eq!(roles_received(&t, &rx).await, expected);

    // A receiver that rejects a SET (400 with its RFC 8935 error): recorded, not retried.
    rx.set_mode(Mode::Reject);
    t.roles(&sub, &["rejected"]).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            t.status(&stream).await["tessera_delivery"]["last_error"]["err"] == "invalid_key"
        })
        .await
    );
    let status = t.status(&stream).await;
    assert_eq!(
        status["tessera_delivery"]["last_error"]["description"],
        "unknown kid"
    );
    assert_eq!(status["tessera_delivery"]["held"], 0);
    rx.set_mode(Mode::Accept);
    t.roles(&sub, &["after"]).await;
    assert!(rx.wait_for(6, Duration::from_secs(5)).await);
    assert_eq!(roles_received(&t, &rx).await[5], json!(["after"]));
}

#[tokio::test]
async fn ssf_a_restart_in_the_middle_of_delivery_loses_nothing() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    t.roles(&sub, &["r0"]).await;
    assert!(rx.wait_for(1, Duration::from_secs(5)).await);
    rx.set_mode(Mode::Down);
    for i in 1..4 {
        t.roles(&sub, &[&format!("r{i}")]).await;
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            *rx.attempts.lock().unwrap() >= 2
        })
        .await
    );
    let Transmitter { app, token } = t;
    let app = app.restart_in_place().await;
    let t = Transmitter { app, token };
    t.roles(&sub, &["r4"]).await;
    rx.set_mode(Mode::Accept);
    if !rx.wait_for(5, Duration::from_secs(10)).await {
        // Failed once in CI (and in none of 25 runs under load since): say who held the
        // stream's lease, and how delivery stood.
        let (owner, until): (Option<String>, Option<i64>) = crate::sql::one(
            t.app.core.db.writer(),
            "SELECT lease_owner, lease_until FROM ssf_streams WHERE id = $1",
            &[(&stream).into()],
        )
        .await;
        let status = t.status(&stream).await;
        let attempts = *rx.attempts.lock().unwrap();
        panic!(
            "lost across the restart: {} of 5 SETs arrived, {attempts} attempts; lease {owner:?} until {until:?} (now {}); status {status}",
            rx.count(),
            t.app.core.clock.now(),
        );
    }
    let expected: Vec<Value> = (0..5).map(|i| json!([format!("r{i}")])).collect();
    assert_eq!(roles_received(&t, &rx).await, expected);
    // Exactly once here: nothing was sent twice.
    let jtis: std::collections::HashSet<String> = t
        .verified(rx.sets())
        .await
        .iter()
        .map(|c| c["jti"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(jtis.len(), 5);
}

#[tokio::test]
async fn ssf_the_guard_refuses_a_name_that_resolves_to_loopback_and_says_so_in_the_status() {
    // The default guard: https, public addresses only. `localhost` passes the URL check
    // (a name), and is refused when resolved, before any connection.
    let t = Transmitter::with(&[]).await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": "https://localhost:9/ssf"}))
        .await;
    t.roles(&sub, &["x"]).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            t.status(&stream).await["tessera_delivery"]["last_error"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("no public address"))
        })
        .await,
        "{}",
        t.status(&stream).await
    );
    assert_eq!(t.status(&stream).await["tessera_delivery"]["held"], 1);
}

#[tokio::test]
async fn ssf_a_stream_holds_at_most_its_bound_and_the_rest_waits_in_the_log() {
    let t = Transmitter::with(&[("ssf_allow_insecure_push", "true"), ("ssf_max_held", "2")]).await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    t.set_status(&stream, "paused").await;
    for i in 0..5 {
        t.roles(&sub, &[&format!("r{i}")]).await;
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            let d = t.status(&stream).await["tessera_delivery"].clone();
            d["held"] == 2 && d["lag"] == 3
        })
        .await,
        "{}",
        t.status(&stream).await
    );
    t.set_status(&stream, "enabled").await;
    assert!(rx.wait_for(5, Duration::from_secs(5)).await);
    let expected: Vec<Value> = (0..5).map(|i| json!([format!("r{i}")])).collect();
    assert_eq!(roles_received(&t, &rx).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_sets_accepted_on_many_streams_are_removed_and_counted_per_stream() {
    // Accepted SETs leave the queues in batches across streams: each stream still gets
    // its own SETs once, in order, and counts only its own.
    let t = Transmitter::with(&[
        ("ssf_allow_insecure_push", "true"),
        ("ssf_max_streams_per_client", "10"),
    ])
    .await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let rx = Receiver::start().await;
        let stream = t
            .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
            .await;
        pairs.push((stream, rx));
    }
    let changes = 4;
    for i in 0..changes {
        t.roles(&sub, &[&format!("r{i}")]).await;
    }
    let expected: Vec<Value> = (0..changes).map(|i| json!([format!("r{i}")])).collect();
    for (stream, rx) in &pairs {
        assert!(rx.wait_for(changes, Duration::from_secs(5)).await);
        assert!(
            eventually(Duration::from_secs(5), || async {
                let d = t.status(stream).await["tessera_delivery"].clone();
                d["delivered"] == changes && d["held"] == 0
            })
            .await,
            "{}",
            t.status(stream).await
        );
        assert_eq!(roles_received(&t, rx).await, expected);
    }
}

/// Sets `rx`'s capabilities, as an operator does.
async fn set_capabilities(t: &Transmitter, caps: Value) -> tessera::domain::clients::Narrowed {
    let mut change = serde_json::Map::new();
    change.insert("capabilities".into(), caps);
    let change = tessera::domain::clients::ClientChange(change);
    let actor = tessera::domain::audit::Actor::cli();
    t.app
        .core
        .clients
        .update(&actor, "rx", change)
        .await
        .unwrap()
        .1
}

/// The reason a stream's status says when its client lost `ssf`.
const SSF_REVOKED: &str = "the client no longer has the ssf capability";

/// Checks that `claims` is the stream-updated SET (SSF §8.1.5) of `stream` disabled
/// because its client lost `ssf`.
fn assert_disabled_by_tessera(claims: &Value, stream: &str) {
    let (kind, body) = event_of(claims);
    assert_eq!(kind, STREAM_UPDATED, "{claims}");
    assert_eq!(body, json!({"status": "disabled", "reason": SSF_REVOKED}));
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": stream}));
}

/// How many SETs wait on `stream`.
async fn held(t: &Transmitter, stream: &str) -> i64 {
    let (n,): (i64,) = crate::sql::one(
        t.app.core.db.writer(),
        "SELECT COUNT(*) FROM ssf_pending WHERE stream_id = $1",
        &[stream.into()],
    )
    .await;
    n
}

/// A client that loses the `ssf` capability gets nothing more pushed: its streams are
/// disabled in the change's transaction (push goes on without the receiver calling, so
/// no per-call check would stop it), and a push stream's receiver is told so by one
/// SSF `stream-updated` SET; a poll stream's receiver, which can no longer call, gets
/// none. Given `ssf` again, it re-enables them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_a_client_that_loses_the_capability_gets_no_more_pushes() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    let polled = t.stream(json!({"method": POLL})).await;
    t.roles(&sub, &["before"]).await;
    assert!(rx.wait_for(1, Duration::from_secs(5)).await);

    let narrowed = set_capabilities(&t, json!([])).await;
    assert_eq!(narrowed.disabled_streams, 2);
    let (status, reason): (String, Option<String>) = crate::sql::one(
        t.app.core.db.writer(),
        "SELECT status, reason FROM ssf_streams WHERE id = $1",
        &[stream.as_str().into()],
    )
    .await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("disabled", Some(SSF_REVOKED))
    );
    // The poll stream held the role change; disabled, it holds nothing, not even a
    // stream-updated.
    assert_eq!(held(&t, &polled).await, 0);
    t.roles(&sub, &["while-revoked"]).await;
    assert!(
        rx.wait_for(2, Duration::from_secs(5)).await,
        "the stream-updated SET was not pushed"
    );
    // Several push ticks (500 ms each): nothing more arrives.
    assert!(
        !rx.wait_for(3, Duration::from_secs(2)).await,
        "pushed after the stream-updated SET"
    );
    let claims = t.verified(rx.sets()).await;
    assert_disabled_by_tessera(&claims[1], &stream);
    assert_eq!(held(&t, &stream).await, 0);

    set_capabilities(&t, json!(["ssf"])).await;
    t.set_status(&stream, "enabled").await;
    t.roles(&sub, &["after"]).await;
    assert!(rx.wait_for(3, Duration::from_secs(5)).await);
    let roles: Vec<Value> = t
        .verified(rx.sets())
        .await
        .iter()
        .map(|c| event_of(c).1["claims"]["roles"].clone())
        .collect();
    assert_eq!(
        roles,
        [json!(["before"]), Value::Null, json!(["after"])],
        "a disabled stream holds nothing: re-enabled, it delivers from then on"
    );
}

/// The stream-updated SET is durable: queued with the change, it reaches a receiver that
/// was down across a restart, once.
#[tokio::test]
async fn ssf_the_stream_updated_set_survives_a_restart() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    rx.set_mode(Mode::Down);
    set_capabilities(&t, json!([])).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            *rx.attempts.lock().unwrap() >= 1
        })
        .await
    );
    let Transmitter { app, token } = t;
    let app = app.restart_in_place().await;
    let t = Transmitter { app, token };
    rx.set_mode(Mode::Accept);
    assert!(
        rx.wait_for(1, Duration::from_secs(10)).await,
        "lost across the restart"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            held(&t, &stream).await == 0
        })
        .await
    );
    assert!(!rx.wait_for(2, Duration::from_secs(1)).await, "sent twice");
    let claims = t.verified(rx.sets()).await;
    assert_disabled_by_tessera(&claims[0], &stream);
}

/// `tessera keys rewrap` re-seals a push stream's authorization header under the new
/// KEK: after the restart with it, the header still goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_a_kek_rewrap_reseals_the_push_authorization() {
    let t = Transmitter::start().await;
    let rx = Receiver::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    t.stream(json!({"method": PUSH, "endpoint_url": rx.url, "authorization_header": "Bearer receiver-secret"})).await;
    let new_kek = t.app.rewrap_kek();
    std::fs::write(t.app.dir.path().join("keys").join("kek"), &new_kek).unwrap();
    let Transmitter { app, token } = t;
    let app = app.restart_in_place().await;
    let t = Transmitter { app, token };
    t.roles(&sub, &["editor"]).await;
    assert!(
        rx.wait_for(1, Duration::from_secs(5)).await,
        "not pushed after the KEK rotation"
    );
    let (_, headers) = rx.got.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer receiver-secret");
}
