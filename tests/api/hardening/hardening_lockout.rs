//! Lockouts that attackers could switch on (issue 20, items 2 to 5; docs/operations.md
//! "Throttling and lockouts"): device cookies exempt a browser that signed in before,
//! a page elsewhere cannot spend a user's attempts, attempts in flight and abandoned
//! ones are no failures, and one address cannot take the whole argon2 queue.

use std::sync::Arc;
use std::time::Duration;

use tessera::domain::clients::NewClient;

use crate::hardening::hardening_throttle::{assert_throttled, password};
use crate::oauth::code_flow::{Browser, ORIGIN, hidden_fields, spa};
use crate::support::*;

/// Public clients `app` (password grant, origin [`ORIGIN`]) and `spa` (code flow),
/// user alice; `extra` settings.
async fn setup(extra: &[(&'static str, &str)]) -> Arc<TestApp> {
    let app = TestApp::with(extra).await;
    app.client_with(NewClient {
        id: "app".into(),
        public: true,
        grant_types: vec!["password".parse().unwrap()],
        audiences: vec!["https://api.example".into()],
        origins: vec![ORIGIN.into()],
        ..Default::default()
    })
    .await;
    spa(&app, "spa", false).await;
    app.user("alice", PASSWORD, &[]).await;
    Arc::new(app)
}

/// A password grant for alice through `app`, from a page on `origin`.
async fn password_from(app: &TestApp, origin: &str, pw: &str) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .header("origin", origin)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", pw),
        ])
        .send()
        .await
        .unwrap()
}

/// Waits (bounded) until `done()` holds: a state reached, not a fixed delay.
async fn until(what: &str, done: impl Fn() -> bool) {
    let reached = eventually(Duration::from_secs(30), || async { done() }).await;
    assert!(reached, "timed out waiting until {what}");
}

#[tokio::test]
async fn a_browser_that_signed_in_before_is_not_locked_out_by_guessers() {
    let app = setup(&[("login_max_failures", "3"), ("login_wait", "0")]).await;
    // The clock stands still: the delays below do not pass while the test runs.
    app.advance(Duration::ZERO);
    let mut trusted = Browser::new(&app);
    trusted.sign_in("spa", "alice", PASSWORD).await;
    assert!(
        trusted.cookies.contains_key("tessera_device"),
        "a device cookie"
    );
    // Guessers push alice's username past its limit (from several addresses too).
    for _ in 0..3 {
        let r = password(&app, "alice", "guess", None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    assert_throttled(password(&app, "alice", PASSWORD, None).await, 1).await;
    // A new browser is delayed like any untrusted source...
    let mut stranger = Browser::new(&app);
    let page = stranger.authorize("spa", &[]).await.text().await.unwrap();
    let r = stranger.submit_login(&page, "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // ...but the browser that signed in as alice before signs in at once.
    let page = trusted.authorize("spa", &[("prompt", "login")]).await;
    let page = page.text().await.unwrap();
    let r = trusted.submit_login(&page, "alice", PASSWORD).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    // Its cookie names alice only: as another user it is untrusted.
    app.user("bob", PASSWORD, &[]).await;
    for _ in 0..3 {
        assert_eq!(password(&app, "bob", "guess", None).await.status(), 400);
    }
    let page = trusted.authorize("spa", &[("prompt", "login")]).await;
    let page = page.text().await.unwrap();
    let r = trusted.submit_login(&page, "bob", PASSWORD).await;
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn a_trusted_browser_has_its_own_limit() {
    let app = setup(&[("login_max_failures", "2"), ("login_wait", "0")]).await;
    let mut b = Browser::new(&app);
    b.sign_in("spa", "alice", PASSWORD).await;
    let page = b.authorize("spa", &[("prompt", "login")]).await;
    let page = page.text().await.unwrap();
    for _ in 0..2 {
        assert_eq!(b.submit_login(&page, "alice", "wrong").await.status(), 200);
    }
    // The device is past its own limit: it is untrusted now, and the username,
    // which its failures did not touch, lets the right password through.
    let r = b.submit_login(&page, "alice", PASSWORD).await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn a_page_on_another_origin_cannot_spend_a_users_attempts() {
    let app = setup(&[("login_max_failures", "1"), ("login_wait", "0")]).await;
    app.advance(Duration::ZERO);
    // /token: an Origin the client did not register is refused before any attempt.
    for _ in 0..3 {
        let r = password_from(&app, "https://evil.example", "guess").await;
        let body = assert_oauth_error(r, 400, "unauthorized_client").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("origin")
        );
    }
    // The login page: a form posted from another origin, even with a valid CSRF pair.
    let mut b = Browser::new(&app);
    let page = b.authorize("spa", &[]).await.text().await.unwrap();
    let mut form = hidden_fields(&page);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "guess".into()));
    let cookie: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for origin in ["https://evil.example", "null"] {
        let r = app
            .http
            .post(app.url("/login"))
            .header("origin", origin)
            .header("cookie", cookie.join("; "))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{origin}");
    }
    // None of that counted: alice signs in, from her app's origin and from the page
    // (the issuer's own origin).
    assert_eq!(password_from(&app, ORIGIN, PASSWORD).await.status(), 200);
    let r = app
        .http
        .post(app.url("/login"))
        .header("origin", app.addr.trim_end_matches('/'))
        .header("cookie", cookie.join("; "))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the issuer's own origin: a wrong password, counted"
    );
    assert_eq!(password(&app, "alice", PASSWORD, None).await.status(), 429);
}

#[tokio::test]
async fn concurrent_right_passwords_wait_for_a_slot_instead_of_429() {
    let app = setup(&[
        ("login_max_failures", "10"),
        ("argon2_address_share", "100"),
    ])
    .await;
    let hold = app.core.signin.passwords.hold();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { password(&app, "alice", PASSWORD, None).await.status() })
        })
        .collect();
    let (passwords, core) = (app.core.signin.passwords.clone(), app.core.clone());
    until(
        "the limit's worth of sign-ins is queued, the rest waits",
        || passwords.stats().queued == 10 && core.signin.throttle.usernames.waiting() == 6,
    )
    .await;
    drop(hold);
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200, "none of them failed");
    }
}

#[tokio::test]
async fn abandoned_sign_ins_are_not_counted_as_failures() {
    let app = setup(&[("login_max_failures", "5"), ("request_timeout", "1")]).await;
    let hold = app.core.signin.passwords.hold();
    let abandoned: Vec<_> = (0..5)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { password(&app, "alice", "guess", None).await.status() })
        })
        .collect();
    for a in abandoned {
        assert_eq!(a.await.unwrap(), 503, "timed out before argon2 ran");
    }
    drop(hold);
    // Five attempts that evaluated nothing cost alice nothing.
    assert_eq!(password(&app, "alice", PASSWORD, None).await.status(), 200);
}

#[tokio::test]
async fn one_address_cannot_take_the_whole_argon2_queue() {
    let app = setup(&[
        ("argon2_queue", "4"),
        ("argon2_address_share", "2"),
        ("trusted_proxies", "127.0.0.1"),
    ])
    .await;
    app.user("bob", PASSWORD, &[]).await;
    let hold = app.core.signin.passwords.hold();
    let looping: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                password(&app, "alice", PASSWORD, Some("203.0.113.1"))
                    .await
                    .status()
            })
        })
        .collect();
    let (passwords, core) = (app.core.signin.passwords.clone(), app.core.clone());
    until("the address's share is queued, the rest waits", || {
        passwords.stats().queued == 2 && core.signin.throttle.hashing.waiting() == 2
    })
    .await;
    let other = {
        let app = app.clone();
        tokio::spawn(async move {
            password(&app, "bob", PASSWORD, Some("198.51.100.1"))
                .await
                .status()
        })
    };
    until("another address's sign-in is queued (or answered)", || {
        passwords.stats().queued == 3 || other.is_finished()
    })
    .await;
    drop(hold);
    assert_eq!(other.await.unwrap(), 200, "not starved: no 503");
    for t in looping {
        assert_eq!(
            t.await.unwrap(),
            200,
            "the address's own sign-ins waited their turn"
        );
    }
}
