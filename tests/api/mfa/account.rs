//! `/account`: TOTP enrollment confirmed by a first code, removal, the account page's own
//! second step, and what a credential change ends.

use super::*;
use crate::oauth::code_flow::Browser;

async fn events_of(app: &TestApp, sub: &str) -> Vec<(String, Option<String>)> {
    crate::sql::all(
        app.core.db.writer(),
        "SELECT type, reason FROM security_events WHERE sub = $1 ORDER BY id",
        &[sub.into()],
    )
    .await
}

#[tokio::test]
async fn the_account_page_enrolls_an_authenticator_confirmed_by_a_first_code() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    app.client("web", true, &["password"], &[], &[]).await;
    let before = app.login("web", "alice", PASSWORD).await;
    let mut other = Browser::new(&app);
    account_sign_in(&mut other, "alice").await;

    let mut b = Browser::new(&app);
    account_sign_in(&mut b, "alice").await;
    let resp = b.get("/account").await;
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("Add an authenticator app") && page.contains("No second factor yet"));
    assert!(
        page.contains("web") && !page.contains("<script"),
        "the session is listed: {page}"
    );

    let (uri, factor, enroll) = begin_totp(&mut b).await;
    assert!(uri.starts_with("otpauth://totp/127.0.0.1:alice?"), "{uri}");
    assert!(enroll.contains(r#"<label for="code">Code</label>"#) && enroll.contains("<svg"));
    let secret = secret_of(&uri);
    assert_eq!(secret.len(), 32, "160 bits in base32");

    let resp = confirm_totp(&mut b, &enroll, &factor, "000000").await;
    assert_eq!(resp.status(), 200);
    let wrong = resp.text().await.unwrap();
    assert!(wrong.contains("That code is not right"), "{wrong}");
    assert!(
        events_of(&app, &alice).await.is_empty(),
        "nothing changed yet"
    );

    let code = pyotp_code(&secret, app.core.clock.now());
    let resp = confirm_totp(&mut b, &wrong, &factor, &code).await;
    assert_eq!(resp.status(), 303);
    let page = b.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("Phone") && page.contains("last used 2"),
        "{page}"
    );
    assert!(!page.contains("No second factor yet"));

    // A credential change: the refresh family and the other browser session ended, this
    // one stays.
    assert_eq!(
        events_of(&app, &alice).await,
        [
            (
                "user.credential_changed".to_string(),
                Some("totp_added".to_string())
            ),
            (
                "session.revoked".to_string(),
                Some("totp_added".to_string())
            ),
        ]
    );
    let refresh = app
        .refresh("web", before["refresh_token"].as_str().unwrap())
        .await;
    assert_oauth_error(refresh, 400, "invalid_grant").await;
    let page = other.get("/account").await.text().await.unwrap();
    assert!(page.contains(r#"action="/account/login""#), "{page}");

    // Removing it is a credential change too.
    let page = b.get("/account").await.text().await.unwrap();
    let f = [
        ("csrf".to_string(), csrf_of(&page)),
        ("factor".to_string(), factor.clone()),
    ];
    let resp = b.post("/account/factors/remove", &f).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("No second factor yet"), "{page}");
    let last = events_of(&app, &alice).await.pop().unwrap();
    assert_eq!(
        last,
        (
            "user.credential_changed".into(),
            Some("totp_removed".into())
        )
    );
}

#[tokio::test]
async fn once_enrolled_the_account_page_asks_for_the_second_factor_too() {
    let app = TestApp::spawn().await;
    app.user("alice", PASSWORD, &[]).await;
    let secret = enrolled(&app, "alice").await;
    next_step(&app);

    let mut b = Browser::new(&app);
    account_sign_in(&mut b, "alice").await;
    let page = b.get("/account").await.text().await.unwrap();
    assert!(page.contains(r#"action="/account/mfa""#), "{page}");
    assert!(page.contains(r#"<label for="code">Code</label>"#));
    // Changes are refused until then: back to the second step.
    let f = [("csrf".to_string(), csrf_of(&page))];
    let resp = b.post("/account/recovery-codes", &f).await;
    assert_eq!(resp.status(), 303);

    let code = pyotp_code(&secret, app.core.clock.now());
    let f = [
        ("csrf".to_string(), csrf_of(&page)),
        ("code".to_string(), code),
    ];
    assert_eq!(b.post("/account/mfa", &f).await.status(), 303);
    let page = b.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("Phone") && page.contains("0 unused recovery codes"),
        "{page}"
    );
}

#[tokio::test]
async fn a_form_without_the_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    app.user("alice", PASSWORD, &[]).await;
    let mut b = Browser::new(&app);
    account_sign_in(&mut b, "alice").await;
    let resp = b.post("/account/totp", &[]).await;
    assert_eq!(resp.status(), 403);
    let resp = b
        .post(
            "/account/recovery-codes",
            &[("csrf".into(), "x".repeat(43))],
        )
        .await;
    assert_eq!(resp.status(), 403);
}
