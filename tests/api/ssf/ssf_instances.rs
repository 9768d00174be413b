//! Two instances on one database (PostgreSQL with `TESSERA_TEST_POSTGRES`; on SQLite
//! two processes sharing one file): a push stream is delivered by one instance at a
//! time (the lease), every SET once and in order.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::keys::keys_instances::Instance;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssf_two_instances_push_each_set_once_never_concurrently() {
    let t = Transmitter::start().await;
    let b = Instance::start(&t.app).await;
    let rx = Receiver::start().await;
    // Slow enough that two instances pushing the stream at once would overlap.
    *rx.latency.lock().unwrap() = Duration::from_millis(20);
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    t.stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    let changes = 20;
    for i in 0..changes {
        t.roles(&sub, &[&format!("r{i}")]).await;
    }
    assert!(
        rx.wait_for(changes, Duration::from_secs(20)).await,
        "{} of {changes} arrived; B: {}",
        rx.count(),
        b.log()
    );
    let claims = t.verified(rx.sets()).await;
    let jtis: HashSet<&str> = claims.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), changes, "a SET was delivered twice");
    let roles: Vec<Value> = claims
        .iter()
        .map(|c| event_of(c).1["claims"]["roles"].clone())
        .collect();
    let expected: Vec<Value> = (0..changes).map(|i| json!([format!("r{i}")])).collect();
    assert_eq!(roles, expected);
    let (_, most) = *rx.in_flight.lock().unwrap();
    assert_eq!(most, 1, "two pushes of one stream at once");
}

/// The lease itself: of many instances racing for a free lease, one wins; a live lease
/// is its holder's until it expires, then anyone's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssf_the_push_lease_has_one_holder_at_a_time() {
    use tessera::store::ssf::take_lease;
    let t = Transmitter::start().await;
    // A poll stream: no push worker competes for it.
    let stream = t.stream(json!({"method": POLL})).await;
    let db = t.app.core.db.clone();
    let now = 1_000;
    let racers = (0..8).map(|i| {
        let (db, stream) = (db.clone(), stream.clone());
        tokio::spawn(async move {
            take_lease(db.writer(), &stream, &format!("i{i}"), now, now + 15)
                .await
                .unwrap()
        })
    });
    let won: Vec<bool> = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let holder = format!("i{}", won.iter().position(|w| *w).unwrap());
    let other = if holder == "i0" { "i1" } else { "i0" };
    assert!(
        !take_lease(db.writer(), &stream, other, now + 15, now + 30)
            .await
            .unwrap()
    );
    assert!(
        take_lease(db.writer(), &stream, &holder, now + 10, now + 25)
            .await
            .unwrap()
    );
    // Expired: another takes it, and the former holder no longer renews it.
    assert!(
        take_lease(db.writer(), &stream, other, now + 26, now + 41)
            .await
            .unwrap()
    );
    assert!(
        !take_lease(db.writer(), &stream, &holder, now + 27, now + 42)
            .await
            .unwrap()
    );
}
