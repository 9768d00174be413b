//! `sse`: one subscriber, 200 role changes made one at a time, each awaited on the
//! stream before the next: every change arrives, in order, with its roles; prints
//! the latency from just before the admin call to receipt on the stream, and the
//! admin call's own round trip. (Once a test of the suite, `sse_latency_over_200_role_changes`:
//! a figure, not a pass/fail check, so it lives here.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{EventsSetup, Opts, events_setup};

const CHANGES: usize = 200;

/// Percentile `p` (0..=100) of sorted durations, in milliseconds.
fn pct(v: &[Duration], p: usize) -> f64 {
    v[(v.len() * p / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
}

pub(crate) async fn one_by_one(o: &Opts, token_url: &str, client: &(String, String)) -> Value {
    let EventsSetup {
        http,
        base,
        feed_token,
        admin_token,
        uid,
    } = events_setup(o, token_url, client, "sse-target").await;
    let mut resp = http
        .get(format!("{base}/events"))
        .bearer_auth(&feed_token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET /events");
    // The reader timestamps each roles event the moment it is parsed, independently of
    // the writer.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Value, Instant)>();
    let reader = tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find("\n\n") {
                let frame: String = buf.drain(..i + 2).collect();
                if !frame.contains("event: user.roles_changed") {
                    continue; // session.revoked and comments
                }
                let data = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .and_then(|d| serde_json::from_str::<Value>(d).ok());
                if let Some(data) = data
                    && tx.send((data, Instant::now())).is_err()
                {
                    return;
                }
            }
        }
    });

    let mut latencies = Vec::with_capacity(CHANGES);
    let mut call = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let start = Instant::now();
        let r = super::set_roles(&http, &base, &admin_token, &uid, &[format!("role-{i}")]).await;
        call.push(start.elapsed());
        let (data, received) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event within 5 s")
            .expect("the stream is open");
        assert_eq!(data["sub"], uid.as_str(), "the target's event");
        assert_eq!(data["ver"], r["ver"], "events arrive in order");
        assert_eq!(data["roles"], json!([format!("role-{i}")]));
        latencies.push(received - start);
    }
    reader.abort();

    latencies.sort_unstable();
    call.sort_unstable();
    let max = latencies.last().unwrap().as_secs_f64() * 1000.0;
    println!(
        "{:<10} {:<19} {CHANGES} changes one by one: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms \
         (from just before the admin call to receipt on the stream; the call itself: p50 {:.2} ms  p99 {:.2} ms)",
        o.label,
        "sse",
        pct(&latencies, 50),
        pct(&latencies, 99),
        max,
        pct(&call, 50),
        pct(&call, 99),
    );
    json!({"server": o.label, "scenario": "sse", "changes": CHANGES,
           "p50_ms": pct(&latencies, 50), "p99_ms": pct(&latencies, 99), "max_ms": max,
           "call_p50_ms": pct(&call, 50), "call_p99_ms": pct(&call, 99)})
}
