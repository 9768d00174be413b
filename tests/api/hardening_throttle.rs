//! Brute-force throttling and stream limits (DESIGN "Bad input and faults",
//! CONFORMANCE 16, README "Abuse and limits").

use reqwest::Response;

use crate::support::*;
use crate::token::basic;

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

/// 429 `slow_down` with an integer `Retry-After` in (0, window], no-store, JSON.
async fn assert_throttled(resp: Response, window: u64) {
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is an integer number of seconds");
    assert!(retry > 0 && retry <= window, "Retry-After {retry}");
    let body = assert_oauth_error(resp, 429, "slow_down").await;
    assert!(body["error_description"].is_string(), "{body}");
}

async fn throttled_events(app: &TestApp, sub: &str) -> i64 {
    let (n,): (i64,) = crate::sql::one(
        &app.core.db.read,
        "SELECT COUNT(*) FROM security_events WHERE type = 'user.login_throttled' AND sub = $1",
        &[sub.into()],
    )
    .await;
    n
}

#[tokio::test]
async fn wrong_passwords_throttle_that_user_only() {
    let TwoUsers { app, alice } = setup(&[]).await;
    for attempt in 1..=15 {
        let r = password(&app, "alice", "wrong password", None).await;
        if attempt <= 10 {
            assert_oauth_error(r, 400, "invalid_grant").await;
        } else {
            assert_throttled(r, 900).await;
        }
        if attempt == 9 {
            assert_eq!(throttled_events(&app, &alice).await, 0, "not yet throttled");
        }
    }
    // Even the right password, in any letter case of the username.
    assert_throttled(password(&app, "alice", PASSWORD, None).await, 900).await;
    assert_throttled(password(&app, "ALICE", PASSWORD, None).await, 900).await;
    // Another user from the same address is unaffected.
    let r = password(&app, "bob", PASSWORD, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(throttled_events(&app, &alice).await, 1, "one event, once");
}

#[tokio::test]
async fn unknown_usernames_are_throttled_like_known_ones() {
    let TwoUsers { app, .. } = setup(&[]).await;
    for _ in 0..10 {
        let r = password(&app, "nobody", "guess", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    assert_throttled(password(&app, "nobody", "guess", None).await, 900).await;
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
