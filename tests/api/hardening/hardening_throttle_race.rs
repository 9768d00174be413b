//! Throttles under concurrency, the bounded argon2 queue, and the client
//! address behind proxies (issue 11, items 4, 5, 10; README "Abuse and limits").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::hardening::hardening_throttle::password;
use crate::oauth::token::basic;
use crate::support::*;

/// A password grant for public client `app`; (status, Retry-After, error code).
async fn sign_in(
    app: &TestApp,
    user: &str,
    pw: &str,
    forwarded: Option<&str>,
) -> (u16, Option<u64>, String) {
    answer(password(app, user, pw, forwarded).await).await
}

/// (status, Retry-After, error code).
async fn answer(r: reqwest::Response) -> (u16, Option<u64>, String) {
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        retry,
        body["error"].as_str().unwrap_or("").to_string(),
    )
}

/// Waits (bounded) until `done()` holds: a state reached, not a fixed delay.
async fn until(what: &str, done: impl Fn() -> bool) {
    let reached = eventually(Duration::from_secs(30), || async { done() }).await;
    assert!(reached, "timed out waiting until {what}");
}

async fn setup(extra: &[(&'static str, &str)]) -> Arc<TestApp> {
    let app = TestApp::with(extra).await;
    app.client("app", true, &["password"], &[], &[]).await;
    app.user("alice", PASSWORD, &[]).await;
    Arc::new(app)
}

#[tokio::test]
async fn racing_wrong_passwords_are_evaluated_at_most_the_limit() {
    // `login_wait` 0: a request that finds the limit filled by attempts in flight is
    // answered at once (with time to wait it would wait for them to settle).
    let app = setup(&[
        ("login_max_failures", "10"),
        ("argon2_queue", "100"),
        ("argon2_address_share", "100"),
        ("login_wait", "0"),
    ])
    .await;
    app.advance(Duration::ZERO);
    let computed = app.core.signin.passwords.stats().computed;
    // With the workers paused, every request either waits for argon2 or is refused:
    // a check-then-act throttle would let all 40 wait (and evaluate 40 guesses).
    let hold = app.core.signin.passwords.hold();
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (app, answered) = (app.clone(), answered.clone());
            tokio::spawn(async move {
                let r = sign_in(&app, "alice", "wrong guess", None).await;
                answered.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();
    let passwords = app.core.signin.passwords.clone();
    until("every request is answered or queued", || {
        answered.load(Ordering::SeqCst) + passwords.stats().queued == 40
    })
    .await;
    drop(hold);
    let mut evaluated = 0;
    let mut throttled = 0;
    for t in tasks {
        match t.await.unwrap() {
            (400, _, e) if e == "invalid_grant" => evaluated += 1,
            (429, Some(retry), e) if e == "slow_down" && retry > 0 => throttled += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((evaluated, throttled), (10, 30));
    assert_eq!(app.core.signin.passwords.stats().computed - computed, 10);
    // The limit is reached: the right password waits too.
    let (status, retry, _) = sign_in(&app, "alice", PASSWORD, None).await;
    assert_eq!((status, retry.is_some()), (429, true));
}

#[tokio::test]
async fn racing_wrong_client_secrets_are_evaluated_at_most_the_limit() {
    let app = TestApp::with(&[("login_max_failures", "10")]).await;
    app.client("svc", false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (http, base) = (app.http.clone(), app.addr.clone());
            // An unknown client (a database lookup every time) and a known one.
            let id = if i % 2 == 0 { "ghost" } else { "svc" };
            tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/token"))
                    .header("authorization", basic(id, "wrong secret"))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                (id, answer(r).await)
            })
        })
        .collect();
    let mut counts = std::collections::HashMap::new();
    for t in tasks {
        let (id, (status, retry, _)) = t.await.unwrap();
        assert!(
            status == 401 || (status == 429 && retry.is_some()),
            "{status}"
        );
        *counts.entry((id, status)).or_insert(0) += 1;
    }
    // The registered client: exactly the limit evaluated. The unknown one counts
    // against the address only (5× the limit), with no entry of its own.
    assert_eq!(counts.get(&("svc", 401)), Some(&10), "{counts:?}");
    assert_eq!(counts.get(&("svc", 429)), Some(&10), "{counts:?}");
    assert_eq!(counts.get(&("ghost", 401)), Some(&20), "{counts:?}");
    assert_eq!(app.core.signin.throttle.clients.len(), 1);
}

#[tokio::test]
async fn a_full_argon2_queue_answers_503_with_retry_after_at_once() {
    let app = setup(&[("argon2_queue", "2")]).await;
    let hold = app.core.signin.passwords.hold();
    let waiting: Vec<_> = ["u1", "u2"]
        .into_iter()
        .map(|user| {
            let app = app.clone();
            tokio::spawn(async move { sign_in(&app, user, "guess", None).await })
        })
        .collect();
    let passwords = app.core.signin.passwords.clone();
    until("two sign-ins wait", || passwords.stats().queued == 2).await;
    // Answered while the workers are still paused: refused without waiting.
    let (status, retry, error) = sign_in(&app, "alice", PASSWORD, None).await;
    assert_eq!(status, 503);
    assert_eq!(error, "temporarily_unavailable");
    assert!(retry.is_some_and(|r| r > 0), "Retry-After");
    drop(hold);
    for w in waiting {
        assert_eq!(w.await.unwrap().0, 400);
    }
    // The refused attempt was not counted against alice: she signs in.
    for _ in 0..9 {
        sign_in(&app, "alice", "wrong guess", None).await;
    }
    let (status, _, _) = sign_in(&app, "alice", PASSWORD, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn abandoned_sign_ins_are_skipped_not_computed() {
    let app = setup(&[("request_timeout", "1")]).await;
    let before = app.core.signin.passwords.stats();
    let hold = app.core.signin.passwords.hold();
    // Five sign-ins queue, then their requests time out: their requesters are gone.
    let abandoned: Vec<_> = (0..5)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { sign_in(&app, &format!("u{i}"), "guess", None).await })
        })
        .collect();
    for a in abandoned {
        assert_eq!(a.await.unwrap().0, 503, "timed out");
    }
    assert_eq!(
        app.core.signin.passwords.stats().queued,
        5,
        "still in the queue"
    );
    drop(hold);
    let (status, _, _) = sign_in(&app, "alice", PASSWORD, None).await;
    assert_eq!(status, 200);
    let after = app.core.signin.passwords.stats();
    assert_eq!(after.skipped - before.skipped, 5, "abandoned jobs skipped");
    assert_eq!(
        after.computed - before.computed,
        1,
        "only the live one computed"
    );
}

#[tokio::test]
async fn unparsable_forwarded_entries_end_the_walk_at_the_proxy() {
    // The proxy appends `ip:port` (or `unknown`); the client varies a spoofed entry
    // before it. Every attempt must count against one address (the proxy's).
    for appended in ["203.0.113.9:4711", "unknown"] {
        let app = setup(&[
            ("login_max_failures", "2"),
            ("trusted_proxies", "127.0.0.1"),
        ])
        .await;
        for i in 0..10 {
            let xff = format!("192.0.2.{i}, {appended}");
            let (status, _, _) = sign_in(&app, &format!("user{i}"), "guess", Some(&xff)).await;
            assert_eq!(status, 400, "{appended}");
        }
        let xff = format!("192.0.2.200, {appended}");
        let (status, retry, _) = sign_in(&app, "alice", PASSWORD, Some(&xff)).await;
        assert_eq!((status, retry.is_some()), (429, true), "{appended}");
    }
}
