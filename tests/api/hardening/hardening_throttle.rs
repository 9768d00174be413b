//! Brute-force throttling and stream limits (DESIGN "Bad input and faults",
//! CONFORMANCE 16, README "Abuse and limits").

use std::time::Duration;

use reqwest::Response;

use crate::oauth::token::basic;
use crate::support::*;

/// Public client `app` (password grant), users alice and bob.
struct TwoUsers {
    app: TestApp,
    /// Alice's `sub`.
    alice: String,
}

async fn setup(extra: &[(&'static str, &str)]) -> TwoUsers {
    let app = TestApp::with(extra).await;
    app.client("app", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    app.user("bob", PASSWORD, &[]).await;
    TwoUsers { app, alice }
}

pub(crate) async fn password(
    app: &TestApp,
    user: &str,
    password: &str,
    forwarded: Option<&str>,
) -> Response {
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", user),
        ("password", password),
    ]);
    if let Some(xff) = forwarded {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

/// The integer `Retry-After` of a response.
pub(crate) fn retry_after(resp: &Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is an integer number of seconds")
}

/// 429 `slow_down` with an integer `Retry-After` in (0, window], no-store, JSON
/// whose description says what the 429 means; the body.
pub(crate) async fn assert_throttled(resp: Response, window: u64) -> serde_json::Value {
    let retry = retry_after(&resp);
    assert!(retry > 0 && retry <= window, "Retry-After {retry}");
    let body = assert_oauth_error(resp, 429, "slow_down").await;
    let description = body["error_description"].as_str().unwrap_or("");
    assert!(description.contains("Retry-After"), "{body}");
    body
}

async fn throttled_events(app: &TestApp, sub: &str) -> i64 {
    let (n,): (i64,) = crate::sql::one(
        app.core.db.writer(),
        "SELECT COUNT(*) FROM security_events WHERE type = 'user.login_throttled' AND sub = $1",
        &[sub.into()],
    )
    .await;
    n
}

#[tokio::test]
async fn wrong_passwords_delay_that_user_progressively_never_lock_it() {
    // `login_wait` 0: a delayed attempt is answered 429 at once instead of waiting.
    let TwoUsers { app, alice } = setup(&[("login_wait", "0")]).await;
    app.advance(Duration::ZERO);
    for attempt in 1..=10 {
        let r = password(&app, "alice", "wrong password", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        if attempt == 9 {
            assert_eq!(throttled_events(&app, &alice).await, 0, "not yet throttled");
        }
    }
    // Past the limit: one attempt per delay, the delay doubling with each failure.
    for delay in [1, 2, 4, 8] {
        for name in ["alice", "ALICE"] {
            let r = password(&app, name, PASSWORD, None).await;
            assert_eq!(retry_after(&r), delay);
            let body = assert_throttled(r, delay).await;
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("too many failed sign-ins for this username"),
                "{body}"
            );
        }
        app.advance(Duration::from_secs(delay));
        let r = password(&app, "alice", "wrong password", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    // Another user from the same address is unaffected.
    assert_eq!(password(&app, "bob", PASSWORD, None).await.status(), 200);
    // Once the delay has passed, the right password signs in: no 15-minute lock.
    app.advance(Duration::from_secs(16));
    assert_eq!(password(&app, "alice", PASSWORD, None).await.status(), 200);
    assert_eq!(throttled_events(&app, &alice).await, 1, "one event, once");
    // And the user's count starts over.
    let r = password(&app, "alice", "wrong password", None).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn the_delay_is_capped_at_login_max_delay() {
    let TwoUsers { app, .. } = setup(&[
        ("login_wait", "0"),
        ("login_max_failures", "2"),
        ("login_max_delay", "3"),
    ])
    .await;
    app.advance(Duration::ZERO);
    for _ in 0..2 {
        let r = password(&app, "alice", "wrong", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    // (The address's own limit, 5 × 2 failures, is not reached.)
    for delay in [1, 2, 3, 3] {
        assert_eq!(
            retry_after(&password(&app, "alice", "wrong", None).await),
            delay
        );
        app.advance(Duration::from_secs(delay));
        assert_eq!(password(&app, "alice", "wrong", None).await.status(), 400);
    }
}

#[tokio::test]
async fn unknown_usernames_are_throttled_like_known_ones() {
    let TwoUsers { app, .. } = setup(&[("login_wait", "0")]).await;
    app.advance(Duration::ZERO);
    for _ in 0..10 {
        let r = password(&app, "nobody", "guess", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    assert_throttled(password(&app, "nobody", "guess", None).await, 1).await;
    assert_eq!(password(&app, "alice", PASSWORD, None).await.status(), 200);
}

#[tokio::test]
async fn one_address_is_throttled_after_five_times_the_user_limit() {
    let TwoUsers { app, .. } = setup(&[("login_max_failures", "4")]).await;
    // 20 = 5 × 4 failures, each username failing once.
    for i in 0..20 {
        let r = password(&app, &format!("user{i}"), "guess", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    assert_throttled(password(&app, "user-new", "guess", None).await, 900).await;
    // The address is throttled: even a real user's right password from it.
    assert_throttled(password(&app, "alice", PASSWORD, None).await, 900).await;
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    // Untrusted peer: rotating X-Forwarded-For does not rotate the counted address.
    let TwoUsers { app, .. } = setup(&[("login_max_failures", "2")]).await;
    for i in 0..10 {
        let xff = format!("203.0.113.{i}");
        let r = password(&app, &format!("user{i}"), "guess", Some(&xff)).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    let r = password(&app, "alice", PASSWORD, Some("198.51.100.7")).await;
    assert_throttled(r, 900).await;
}

#[tokio::test]
async fn a_trusted_proxy_forwards_addresses_that_are_counted_apart() {
    let TwoUsers { app, .. } = setup(&[
        ("login_max_failures", "2"),
        ("trusted_proxies", "127.0.0.1"),
    ])
    .await;
    // 10 = 5 × 2 failures from each of two forwarded addresses: neither is throttled early.
    for i in 0..10 {
        for addr in ["203.0.113.1", "203.0.113.2"] {
            let r = password(&app, &format!("{addr}-user{i}"), "guess", Some(addr)).await;
            assert_oauth_error(r, 400, "invalid_grant").await;
        }
    }
    for addr in ["203.0.113.1", "203.0.113.2"] {
        assert_throttled(password(&app, "alice", PASSWORD, Some(addr)).await, 900).await;
    }
    // Another client address behind the same proxy signs in.
    assert_eq!(
        password(&app, "alice", PASSWORD, Some("203.0.113.3"))
            .await
            .status(),
        200
    );
    // The nearest untrusted hop counts: spoofed entries before it change nothing.
    let r = password(&app, "bob", PASSWORD, Some("192.0.2.99, 203.0.113.1")).await;
    assert_throttled(r, 900).await;
}

#[tokio::test]
async fn failed_client_authentication_is_throttled_per_client_and_address() {
    let app = TestApp::with(&[("trusted_proxies", "127.0.0.1")]).await;
    let secret = app
        .client("svc", false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    let other = app
        .client("svc2", false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    let cc = |id: &str, secret: &str, xff: &str| {
        app.http
            .post(app.url("/token"))
            .header("authorization", basic(id, secret))
            .header("x-forwarded-for", xff.to_string())
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..10 {
        let r = cc("svc", "wrong secret", "203.0.113.1").await.unwrap();
        assert_oauth_error(r, 401, "invalid_client").await;
    }
    assert_throttled(cc("svc", "wrong secret", "203.0.113.1").await.unwrap(), 900).await;
    assert_throttled(cc("svc", &secret, "203.0.113.1").await.unwrap(), 900).await;
    // Throttled on /introspect and /revoke too (the same client authentication).
    let r = app
        .http
        .post(app.url("/introspect"))
        .header("authorization", basic("svc", &secret))
        .header("x-forwarded-for", "203.0.113.1")
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_throttled(r, 900).await;
    // Another client from the same address, and the same client from elsewhere, are fine.
    assert_eq!(
        cc("svc2", &other, "203.0.113.1").await.unwrap().status(),
        200
    );
    assert_eq!(
        cc("svc", &secret, "203.0.113.2").await.unwrap().status(),
        200
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tessera_throttled_total{endpoint=\"token\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn unknown_client_ids_count_against_their_address_only() {
    // Issue 20 item 1: random unknown client ids from one address filled the client
    // table, and then every client everywhere got 429.
    let app = TestApp::with(&[("trusted_proxies", "127.0.0.1")]).await;
    let secret = app
        .client("svc", false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    let cc = |id: String, secret: String, xff: &'static str| {
        app.http
            .post(app.url("/token"))
            .header("authorization", basic(&id, &secret))
            .header("x-forwarded-for", xff)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    // 5 × login_max_failures per address, whatever the client ids.
    for i in 0..50 {
        let r = cc(format!("ghost-{i}"), "x".into(), "203.0.113.1")
            .await
            .unwrap();
        assert_oauth_error(r, 401, "invalid_client").await;
    }
    let r = cc("ghost-new".into(), "x".into(), "203.0.113.1")
        .await
        .unwrap();
    let body = assert_throttled(r, 900).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("failed client authentications from this address"),
        "{body}"
    );
    assert!(
        app.core.signin.throttle.clients.is_empty(),
        "unknown client ids take no entry of their own"
    );
    // The registered client, from another address, is unaffected.
    let r = cc("svc".into(), secret.clone(), "203.0.113.2")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn ipv6_addresses_are_counted_by_their_64() {
    // One subscriber holds a whole /64: rotating addresses inside it rotates nothing.
    let TwoUsers { app, .. } = setup(&[
        ("login_max_failures", "2"),
        ("trusted_proxies", "127.0.0.1"),
    ])
    .await;
    for i in 1..=10 {
        let xff = format!("2001:db8:0:1::{i:x}");
        let r = password(&app, &format!("user{i}"), "guess", Some(&xff)).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    let r = password(&app, "alice", PASSWORD, Some("2001:db8:0:1:ffff::1")).await;
    let body = assert_throttled(r, 900).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("failed sign-ins from this address"),
        "{body}"
    );
    let r = password(&app, "alice", PASSWORD, Some("2001:db8:0:2::1")).await;
    assert_eq!(r.status(), 200, "the next /64 is another subscriber");
}
