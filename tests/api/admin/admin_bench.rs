//! Figures, not assertions (ignored by default; run with
//! `cargo nextest run --run-ignored only -E 'test(/admin_bench/)' --no-capture`):
//! the event log and session listings over a large log, through the real admin API.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::support::*;

fn percentiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1];
    format!("n={} p50={:.1?} p99={:.1?}", d.len(), at(0.5), at(0.99))
}

/// `EVENTS` events spread over 10,000 users and 100 seconds, and `FAMILIES` live
/// sessions of one client, written in bulk.
const EVENTS: i64 = 1_000_000;
const FAMILIES: i64 = 100_000;

async fn seed(app: &TestApp, user: &str) {
    let pg = on_postgres();
    let db = &app.core.db;
    let n = |sql: &str| {
        sql.replace("{EVENTS}", &EVENTS.to_string())
            .replace("{FAMILIES}", &FAMILIES.to_string())
    };
    let (events, families) = if pg {
        (
            n("INSERT INTO security_events (type, sub, ver, reason, at)
               SELECT CASE WHEN i % 1000 = 0 THEN 'user.enabled' ELSE 'user.roles_changed' END,
                      'u' || (i % 10000), i, 'bench', 1767225600 + i % 100
               FROM generate_series(1, {EVENTS}) AS i"),
            n("INSERT INTO refresh_families (id, user_id, client_id, scope, audience, created_at, last_used_at, expires_at)
               SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-000000000000', $1, 'web', '', '[]', 0, 0, 9999999999
               FROM generate_series(1, {FAMILIES}) AS i"),
        )
    } else {
        (
            n("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {EVENTS})
               INSERT INTO security_events (type, sub, ver, reason, at)
               SELECT CASE WHEN i % 1000 = 0 THEN 'user.enabled' ELSE 'user.roles_changed' END,
                      'u' || (i % 10000), i, 'bench', 1767225600 + i % 100 FROM c"),
            n("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {FAMILIES})
               INSERT INTO refresh_families (id, user_id, client_id, scope, audience, created_at, last_used_at, expires_at)
               SELECT printf('%08x-0000-4000-8000-000000000000', i), $1, 'web', '', '[]', 0, 0, 9999999999 FROM c"),
        )
    };
    for sql in [&events, &families] {
        crate::sql::exec(db.writer(), sql, &[user.into()]).await;
    }
    // The statistics a long-running database has (PostgreSQL's autovacuum gathers them).
    crate::sql::exec(db.writer(), "ANALYZE", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn admin_bench_event_log_and_sessions_at_a_million_events() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let started = Instant::now();
    seed(&app, &alice).await;
    eprintln!(
        "seeded {EVENTS} events and {FAMILIES} sessions in {:?}",
        started.elapsed()
    );
    let second_page = {
        let r = app
            .with_bearer(Method::GET, "/admin/events?limit=50", &admin)
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        body["next_cursor"].as_str().unwrap().to_string()
    };
    let sessions_cursor = "00008000-0000-4000-8000-000000000000";
    for (name, path) in [
        ("newest page", "/admin/events?limit=50".to_string()),
        (
            "a later page",
            format!("/admin/events?limit=50&cursor={second_page}"),
        ),
        ("by sub", "/admin/events?sub=u42&limit=50".into()),
        (
            "by rare type",
            "/admin/events?type=user.enabled&limit=50".into(),
        ),
        (
            "by time window",
            "/admin/events?since=1767225650&until=1767225651&limit=50".into(),
        ),
        (
            "sessions by client",
            "/admin/sessions?client=web&limit=50".into(),
        ),
        (
            "sessions by client, later page",
            format!("/admin/sessions?client=web&limit=50&cursor={sessions_cursor}"),
        ),
        (
            "sessions by user",
            format!("/admin/sessions?user={alice}&limit=50"),
        ),
        ("user in full", format!("/admin/users/{alice}")),
    ] {
        let mut times = Vec::new();
        for _ in 0..100 {
            let before = Instant::now();
            let r = app
                .with_bearer(Method::GET, &path, &admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await.unwrap();
            times.push(before.elapsed());
        }
        eprintln!("{name:<32} {}", percentiles(times));
    }
}
