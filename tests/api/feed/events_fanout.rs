//! The feed at scale: many subscribers (live, resuming from behind the in-memory
//! tail, user-filtered, one that stops reading) against concurrent writers each get
//! exactly the events they may see, in order, once; on one instance and across two.

use std::time::Duration;

use reqwest::{Method, header};
use tessera::domain::permissions::Change;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::keys::keys_instances::Instance;

const USERS: usize = 3;
const CHANGES_PER_USER: usize = 40;

/// Ids of the `id:` lines of an SSE text (hyper writes each event in one chunk, so
/// chunk-size lines never split one).
fn ids_in(text: &str) -> Vec<i64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// An SSE stream read by a task until it has seen `until` (or 15 s passed).
fn follow(
    http: reqwest::Client,
    url: String,
    token: String,
    last_event_id: Option<i64>,
    until: tokio::sync::watch::Receiver<i64>,
) -> tokio::task::JoinHandle<Vec<i64>> {
    tokio::spawn(async move {
        let mut req = http
            .get(url)
            .bearer_auth(&token)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let mut resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut text = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let target = *until.borrow();
                if target > 0 && ids_in(&text).last().is_some_and(|l| *l >= target) {
                    return;
                }
                match tokio::time::timeout(Duration::from_millis(200), resp.chunk()).await {
                    Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
                    Ok(_) => return,
                    Err(_) => {}
                }
            }
        })
        .await;
        ids_in(&text)
    })
}

/// An SSE stream on a raw socket with a tiny receive buffer that is not read until
/// told: the server cannot deliver to it, and must not buffer for it.
async fn stalled(base: &str, token: &str) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let req = format!(
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

async fn read_stalled(mut tcp: tokio::net::TcpStream, until: i64) -> Vec<i64> {
    let mut text = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while ids_in(&text).last().is_none_or(|l| *l < until) {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
    .await;
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    ids_in(&text)
}

fn assert_exactly(name: &str, got: &[i64], want: &[i64]) {
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "{name}: ids not strictly increasing: {got:?}"
    );
    assert_eq!(got, want, "{name}: not exactly the events it may see");
}

/// Runs the scenario with the app (writers) and `feed_base` (where the subscribers
/// connect: the same instance or another).
async fn scenario(app: &TestApp, feed_base: &str) {
    let gw = app.service("gw", &["events"]).await;
    let mut tokens = vec![];
    for _ in 0..3 {
        tokens.push(app.client_token("gw", &gw).await);
    }
    app.client("web", true, &["password"], &[], &[]).await;
    let mut users = vec![];
    for i in 0..USERS {
        let name = format!("user{i}");
        let id = app.user(&name, PASSWORD, &["r0"]).await;
        let at = app.login("web", &name, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        users.push((id, at));
    }
    // History longer than the tail (16): a subscriber resuming from the start is
    // certainly behind it and reads its catch-up from the database.
    let bystander = app.user("bystander", PASSWORD, &[]).await;
    for n in 0..40 {
        app.core
            .users
            .change_user(
                &tessera::domain::audit::Actor::cli(),
                &bystander,
                Change::Roles(vec![format!("h{n}")]),
            )
            .await
            .unwrap();
    }
    let (events_before,): (i64,) = crate::sql::one(
        app.core.db.writer(),
        "SELECT COALESCE(MAX(id), 0) FROM security_events",
        &[],
    )
    .await;
    let url = format!("{feed_base}/events");
    // Each follower reads until the last id it should see, told once the writers
    // are done.
    let mut followers = vec![];
    let mut follower = |name: String, user: Option<String>, token: &str, from: Option<i64>| {
        let (until_tx, until) = tokio::sync::watch::channel(0i64);
        let task = follow(
            app.http.clone(),
            url.clone(),
            token.to_string(),
            from,
            until,
        );
        followers.push((name, user, until_tx, task));
    };
    // Client streams: live ones, and ones resuming from the very start (behind the tail).
    for (i, token) in tokens.iter().enumerate() {
        follower(format!("live {i}"), None, token, None);
    }
    for (i, token) in tokens.iter().take(2).enumerate() {
        follower(format!("resuming {i}"), None, token, Some(0));
    }
    // Each user's own stream sees that user's events only.
    for (i, (id, at)) in users.iter().enumerate() {
        follower(format!("user {i}"), Some(id.clone()), at, None);
    }
    let slow = stalled(feed_base, &tokens[2]).await;
    // Let every stream register before the writers start.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Concurrent writers, one per user (policy reissue: the users' streams survive).
    let writers: Vec<_> = users
        .iter()
        .map(|(id, _)| {
            let (core, id) = (app.core.clone(), id.clone());
            tokio::spawn(async move {
                for n in 1..=CHANGES_PER_USER {
                    core.users
                        .change_user(
                            &tessera::domain::audit::Actor::cli(),
                            &id,
                            Change::Roles(vec![format!("r{n}")]),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let all: Vec<(i64, Option<String>)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT id, sub FROM security_events WHERE id > $1 ORDER BY id",
        &[events_before.into()],
    )
    .await;
    assert_eq!(all.len(), USERS * CHANGES_PER_USER);
    let last = all.last().unwrap().0;
    let everything: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
    let history: Vec<(i64,)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT id FROM security_events ORDER BY id",
        &[],
    )
    .await;
    let history: Vec<i64> = history.into_iter().map(|(id,)| id).collect();
    let mut wanted = vec![];
    for (name, user, until_tx, task) in followers {
        let want: Vec<i64> = match &user {
            Some(u) => all
                .iter()
                .filter(|(_, sub)| sub.as_deref() == Some(u.as_str()))
                .map(|(id, _)| *id)
                .collect(),
            // From id 0: the whole log, most of it read from the database.
            None if name.starts_with("resuming") => history.clone(),
            None => everything.clone(),
        };
        until_tx.send_replace(*want.last().unwrap());
        wanted.push((name, want, task));
    }
    for (name, want, task) in wanted {
        assert_exactly(&name, &task.await.unwrap(), &want);
    }
    let got = read_stalled(slow, last).await;
    assert_exactly("stalled", &got, &everything);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_gets_exactly_its_events_in_order_once() {
    // A tail of 16 events: the resuming subscribers are served from the database for
    // their catch-up, then join the tail (so is the stalled one, once the socket
    // buffers the kernel gives it are full).
    let app = TestApp::with(&[
        ("event_tail", "16"),
        ("permission_change_policy", "reissue"),
    ])
    .await;
    let newest = || async {
        let (id,): (i64,) = crate::sql::one(
            app.core.db.writer(),
            "SELECT COALESCE(MAX(id), 0) FROM security_events",
            &[],
        )
        .await;
        id as u64
    };
    let (reads_before, catch_ups_before) =
        (app.core.feed.tail.reads(), app.core.feed.tail.catch_ups());
    let first = newest().await;
    let addr = app.addr.clone();
    scenario(&app, &addr).await;
    // The tail reads the log once per wake-up, and a commit wakes it at most three
    // times (its own commit, PostgreSQL's NOTIFY, the watcher's tick), whatever the
    // number of subscribers: nine subscribers reading for themselves would make nine
    // reads per wake-up.
    let events = newest().await - first;
    let reads = app.core.feed.tail.reads() - reads_before;
    assert!(
        reads <= 3 * events + 2,
        "{reads} tail reads for {events} events and 9 subscribers"
    );
    // The two subscribers resuming from id 0 start behind the tail: their catch-up
    // is read from the database (how often a lagging one falls behind again depends
    // on the machine's load, so only that floor is certain).
    let catch_ups = app.core.feed.tail.catch_ups() - catch_ups_before;
    assert!(catch_ups >= 2, "{catch_ups} catch-up reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_of_a_second_instance_get_exactly_their_events_too() {
    let app = TestApp::with(&[
        ("event_tail", "16"),
        ("permission_change_policy", "reissue"),
    ])
    .await;
    let b = Instance::start(&app).await;
    scenario(&app, &b.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_stream_is_not_woken_by_other_users_events() {
    let app = TestApp::with(&[("permission_change_policy", "reissue")]).await;
    app.client("web", true, &["password"], &[], &[]).await;
    app.user("alice", PASSWORD, &[]).await;
    let bob = app.user("bob", PASSWORD, &[]).await;
    let at = app.login("web", "alice", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut resp = app
        .with_bearer(Method::GET, "/events", &at)
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    let watched = crate::support::eventually(Duration::from_secs(5), || async {
        app.core.feed.tail.watched_users() == 1
    })
    .await;
    assert!(watched, "alice's stream watches alice only");
    for n in 0..5 {
        app.core
            .users
            .change_user(
                &tessera::domain::audit::Actor::cli(),
                &bob,
                Change::Roles(vec![format!("b{n}")]),
            )
            .await
            .unwrap();
    }
    // Nothing of bob's reaches alice's stream (a heartbeat at most).
    let got = tokio::time::timeout(Duration::from_millis(500), resp.chunk()).await;
    if let Ok(Ok(Some(chunk))) = got {
        assert!(ids_in(&String::from_utf8_lossy(&chunk)).is_empty());
    }
}
