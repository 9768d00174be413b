//! Crash safety of refresh rotation: `kill -9` in the middle of concurrent
//! rotations loses no family and never leaves two live successors (DESIGN
//! "Bad input and faults").

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

use crate::support::*;

const FAMILIES: usize = 20;

/// The last refresh token whose response arrived, and the one before it.
#[derive(Clone)]
struct Family {
    last: String,
    previous: Option<String>,
}

async fn refresh(http: &Client, s: &Served, rt: &str) -> reqwest::Result<(u16, Value)> {
    let r = http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", rt),
        ])
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

/// Families with more than one live refresh token, families revoked, families with a head.
async fn invariants(database_url: &str) -> (Vec<(String, i64)>, i64, i64) {
    let db = crate::sql::connect(database_url).await;
    let branched = crate::sql::branched_families(&db).await;
    let revoked = crate::sql::revoked_families(&db).await;
    let (live,): (i64,) = crate::sql::one(
        &db,
        "SELECT COUNT(*) FROM refresh_families WHERE head_hash IS NOT NULL",
        &[],
    )
    .await;
    crate::sql::close(db).await;
    (branched, revoked, live)
}

/// How many of `tokens` are consumed on disk: rotations committed whose response never
/// arrived. Each must be its family's head, or the head's predecessor (one lost answer).
async fn lost_responses(database_url: &str, tokens: &[String]) -> usize {
    let db = crate::sql::connect(database_url).await;
    let mut lost = 0;
    for t in tokens {
        let head = crate::sql::named_token_state(&db, t).await;
        assert!(
            head.is_some(),
            "the last token a chain got is neither the head nor its predecessor"
        );
        lost += usize::from(head == Some(false));
    }
    crate::sql::close(db).await;
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_rotations_loses_no_family() {
    kill_9_during_concurrent_rotations(&[]).await;
}

/// `synchronous=normal` gives up durability through a power cut, not through a process
/// crash: a commit is in the WAL file before the answer (docs/operations.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_only_kill_9_with_synchronous_normal_loses_no_family() {
    if skip_unless(
        !on_postgres(),
        "an SQLite setting, and this run is on PostgreSQL",
    ) {
        return;
    }
    kill_9_during_concurrent_rotations(&[("TESSERA_SQLITE_SYNCHRONOUS", "normal")]).await;
}

async fn kill_9_during_concurrent_rotations(extra: &[(&str, &str)]) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = vec![("RUST_LOG", "warn,tessera=info")];
    settings.extend_from_slice(extra);
    let env = Served::env_for(&dir, &settings);
    let database_url = env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .unwrap()
        .1
        .clone();
    let s = Served::start(dir.clone(), env.clone(), "before.log").await;
    s.cli_ok(
        &["client", "add", "app", "--public", "--grant", "password"],
        None,
    );
    s.cli_ok(
        &["user", "add", "alice", "--password-stdin"],
        Some("alice password 1\n"),
    );
    let http = Client::new();
    let mut start = Vec::new();
    for _ in 0..FAMILIES {
        let r = http
            .post(s.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", "alice password 1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        start.push(Mutex::new(Family {
            last: body["refresh_token"].as_str().unwrap().to_string(),
            previous: None,
        }));
    }
    let families = Arc::new(start);
    let s = Arc::new(s);
    let rotations = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..FAMILIES {
        let (families, s, http) = (families.clone(), s.clone(), http.clone());
        let (rotations, killed) = (rotations.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let rt = families[i].lock().unwrap().last.clone();
                match refresh(&http, &s, &rt).await {
                    Ok((200, body)) => {
                        let next = body["refresh_token"].as_str().unwrap().to_string();
                        let mut f = families[i].lock().unwrap();
                        f.previous = Some(std::mem::replace(&mut f.last, next));
                        rotations.fetch_add(1, Ordering::SeqCst);
                    }
                    _ if killed.load(Ordering::SeqCst) => return Ok(()),
                    // Before the kill every refresh must succeed.
                    other => return Err(format!("family {i}: {other:?}")),
                }
            }
        }));
    }
    // Mid-flight: once rotations are well under way.
    let under_way = eventually(Duration::from_secs(30), || async {
        rotations.load(Ordering::SeqCst) >= 200
    })
    .await;
    assert!(under_way, "rotations stalled");
    killed.store(true, Ordering::SeqCst);
    s.signal("KILL");
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut s = Arc::into_inner(s).expect("tasks are done");
    let status = s.wait_exit(Duration::from_secs(5)).await.expect("killed");
    assert!(!status.success());

    let (branched, revoked, live) = invariants(&database_url).await;
    assert!(
        branched.is_empty(),
        "branched families on disk: {branched:?}"
    );
    assert_eq!((revoked, live), (0, FAMILIES as i64), "after the crash");
    let lasts: Vec<String> = families
        .iter()
        .map(|f| f.lock().unwrap().last.clone())
        .collect();
    let lost = lost_responses(&database_url, &lasts).await;

    // Restart at once, within the 10 s grace window.
    let s = Served::start(dir.clone(), env, "after.log").await;
    let http = Client::new();
    let mut fell_back = 0;
    for (i, f) in families.iter().enumerate() {
        let f = f.lock().unwrap().clone();
        let (status, body) = refresh(&http, &s, &f.last).await.unwrap();
        let next = if status == 200 {
            body
        } else {
            assert_eq!(
                body["error"], "invalid_grant",
                "family {i}: {status} {body}"
            );
            fell_back += 1;
            let previous = f
                .previous
                .expect("a family that never rotated must refresh");
            let (status, body) = refresh(&http, &s, &previous).await.unwrap();
            assert_eq!(
                status, 200,
                "family {i} lost: neither token refreshes: {body}"
            );
            body
        };
        // The family goes on.
        let rt = next["refresh_token"].as_str().unwrap();
        let (status, body) = refresh(&http, &s, rt).await.unwrap();
        assert_eq!(status, 200, "family {i} after the restart: {body}");
    }
    eprintln!(
        "{} rotations before the kill, {lost} committed with the response lost; \
         {fell_back} families needed the previous token",
        rotations.load(Ordering::SeqCst)
    );
    let (branched, revoked, live) = invariants(&database_url).await;
    assert!(branched.is_empty(), "branched families: {branched:?}");
    assert_eq!((revoked, live), (0, FAMILIES as i64), "after the restart");
}
