//! Figures, not assertions (ignored by default; run with
//! `cargo nextest run --run-ignored only -E 'test(/ssf_bench/)' --no-capture`):
//! role change → SET accepted by the receiver, by push and by long-poll, and the
//! fan-out to many push streams. Printed as p50/p99; docs/performance.md has them.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::support::*;

fn percentiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1];
    format!(
        "n={} p50={:.1?} p99={:.1?} max={:.1?}",
        d.len(),
        at(0.5),
        at(0.99),
        d[d.len() - 1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn ssf_bench_role_change_to_set_accepted() {
    let t = Transmitter::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;

    // Push.
    let rx = Receiver::start().await;
    let stream = t
        .stream(json!({"method": PUSH, "endpoint_url": rx.url}))
        .await;
    let mut push = Vec::new();
    for i in 0..200 {
        let before = Instant::now();
        t.roles(&sub, &[&format!("p{i}")]).await;
        assert!(rx.wait_for(i + 1, Duration::from_secs(5)).await);
        push.push(rx.arrivals.lock().unwrap()[i] - before);
    }
    eprintln!("push: role change → SET accepted: {}", percentiles(push));
    t.call(
        Method::DELETE,
        &format!("/ssf/stream?stream_id={stream}"),
        None,
    )
    .await;

    // Long-poll: a receiver loop that acknowledges what it got with its next poll.
    let stream = t.stream(json!({"method": POLL})).await;
    let mut poll = Vec::new();
    let mut ack: Vec<String> = Vec::new();
    for i in 0..200 {
        let (url, token, http) = (
            t.app.url(&format!("/ssf/poll/{stream}")),
            t.token.clone(),
            t.app.http.clone(),
        );
        let body = json!({"ack": ack, "returnImmediately": false});
        let waiting = tokio::spawn(async move {
            let r: Value = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (r, Instant::now())
        });
        // The poll is parked once its acknowledgements are gone.
        assert!(
            eventually(Duration::from_secs(5), || async {
                t.status(&stream).await["tessera_delivery"]["held"] == 0
            })
            .await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let before = Instant::now();
        t.roles(&sub, &[&format!("l{i}")]).await;
        let (answer, at) = waiting.await.unwrap();
        ack = answer["sets"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(ack.len(), 1, "{answer}");
        poll.push(at - before);
    }
    eprintln!(
        "long-poll: role change → SET answered: {}",
        percentiles(poll)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn ssf_bench_fan_out_to_push_streams() {
    let t = Transmitter::with(&[
        ("ssf_allow_insecure_push", "true"),
        ("ssf_max_streams_per_client", "200"),
    ])
    .await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let rx = Receiver::start().await;
    let mut streams = 0;
    for target in [1, 10, 100] {
        while streams < target {
            t.stream(json!({"method": PUSH, "endpoint_url": rx.url}))
                .await;
            streams += 1;
        }
        let mut all = Vec::new();
        let changes = 30;
        let started = Instant::now();
        for _ in 0..changes {
            let base = rx.count();
            let before = Instant::now();
            t.roles(&sub, &["x"]).await;
            assert!(rx.wait_for(base + streams, Duration::from_secs(30)).await);
            all.push(*rx.arrivals.lock().unwrap().last().unwrap() - before);
        }
        let per_set = started.elapsed() / (changes * streams) as u32;
        eprintln!(
            "{streams} push streams: role change → SET accepted by all: {}; {per_set:.1?} per SET delivered",
            percentiles(all)
        );
    }
}
