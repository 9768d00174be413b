//! The second sign-in step: a client that requires it, `acr_values` asking for it, codes
//! refused when wrong or replayed, recovery codes, the password grant refused, and `amr`,
//! `acr` in tokens checked with PyJWT.

use std::collections::HashMap;

use serde_json::Value;

use super::*;
use crate::keys::jwks::fetch_jwks;
use crate::keys::jwks_pyjwt::{pyjwt_verify, pyjwt_verify_id_token};
use crate::oauth::code_flow::{Browser, VERIFIER, exchange, query_of, spa};

/// Opens `/authorize` for `client` and submits alice's password: the page after it.
async fn password_step(
    b: &mut Browser<'_>,
    client: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let page = b.authorize(client, extra).await.text().await.unwrap();
    b.submit_login(&page, "alice", PASSWORD).await
}

/// The page the password step answers with (the second step's, for an MFA client).
async fn second_step_page(b: &mut Browser<'_>, client: &str) -> String {
    password_step(b, client, &[]).await.text().await.unwrap()
}

/// Submits `code` on the second-step page.
async fn second_step(b: &mut Browser<'_>, page: &str, code: &str) -> reqwest::Response {
    let mut form = hidden_fields(page);
    form.push(("code".into(), code.into()));
    b.post("/login/mfa", &form).await
}

async fn tokens_of(app: &TestApp, client: &str, resp: &reqwest::Response) -> Value {
    assert_eq!(resp.status(), 303);
    let code = query_of(resp)["code"].clone();
    exchange(app, client, &code, VERIFIER, APP)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_requiring_mfa_forces_the_second_step_and_the_tokens_say_so() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    // Enrolled a step ago, so that the sign-in's tokens are issued at the wall clock's
    // time (PyJWT checks `iat` against it).
    app.step_back(std::time::Duration::from_secs(30));
    let secret = enrolled(&app, "alice").await;
    let spent = pyotp_code(&secret, app.core.clock.now());
    next_step(&app);

    let mut b = Browser::new(&app);
    let resp = password_step(&mut b, "bank", &[]).await;
    assert_eq!(resp.status(), 200, "no code without the second step");
    let page = resp.text().await.unwrap();
    assert!(
        page.contains(r#"action="/login/mfa""#)
            && page.contains(r#"<label for="code">Code</label>"#)
    );

    let resp = second_step(&mut b, &page, "123456").await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("That code is not right"), "{page}");
    // The code already spent at enrollment is a replay, refused.
    let resp = second_step(&mut b, &page, &spent).await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("That code is not right")
    );

    let now = app.core.clock.now();
    let code = pyotp_code(&secret, now);
    let resp = second_step(&mut b, &page, &code).await;
    let tokens = tokens_of(&app, "bank", &resp).await;
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jwt_parts(access).1["amr"],
        serde_json::json!(["pwd", "otp", "mfa"])
    );
    let id = jwt_parts(id_token).1;
    assert_eq!(id["acr"], "urn:tessera:acr:mfa");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(
        id["auth_time"], now,
        "the sign-in completed at the second step"
    );
    assert_eq!(id["sub"], alice.as_str());

    let jwks = fetch_jwks(&app).await;
    let (status, out) = pyjwt_verify(access, &jwks, &app.addr).await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("amr pwd otp mfa;"), "{out}");
    let (status, out) = pyjwt_verify_id_token(id_token, &jwks, &app.addr, "bank").await;
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("amr pwd otp mfa; acr urn:tessera:acr:mfa"),
        "{out}"
    );

    // The same code in another browser, the same step: a replay.
    let mut other = Browser::new(&app);
    let page = second_step_page(&mut other, "bank").await;
    let resp = second_step(&mut other, &page, &code).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("That code is not right")
    );

    // A refresh keeps the sign-in's methods.
    let rt = tokens["refresh_token"].as_str().expect("a refresh token");
    let refreshed: Value = app.refresh("bank", rt).await.json().await.unwrap();
    let claims = jwt_parts(refreshed["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn the_password_grant_is_refused_where_mfa_is_required() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    app.client("web", true, &["password"], &[], &[]).await;
    app.user("alice", PASSWORD, &[]).await;
    let resp = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "bank"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    let body = assert_oauth_error(resp, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{body}"
    );
    let ok = app.login("web", "alice", PASSWORD).await;
    let claims = jwt_parts(ok["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
}

#[tokio::test]
async fn acr_values_ask_for_a_second_factor_and_prompt_none_cannot_show_it() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", PASSWORD, &[]).await;
    let secret = enrolled(&app, "alice").await;
    next_step(&app);

    let mut b = Browser::new(&app);
    let tokens = tokens_of(&app, "spa", &password_step(&mut b, "spa", &[]).await).await;
    let id = jwt_parts(tokens["id_token"].as_str().unwrap()).1;
    assert_eq!(
        (id["acr"].as_str(), &id["amr"]),
        (Some("urn:tessera:acr:pwd"), &serde_json::json!(["pwd"]))
    );

    // Signed in with a password only: prompt=none cannot ask for the second factor.
    let mfa = ("acr_values", "urn:tessera:acr:mfa");
    let resp = b.authorize("spa", &[mfa, ("prompt", "none")]).await;
    assert_eq!(resp.status(), 303);
    let q: HashMap<String, String> = query_of(&resp);
    assert_eq!(q["error"], "interaction_required");

    // The browser's session gets the second step, and keeps it for the next request.
    let resp = b.authorize("spa", &[mfa]).await;
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"action="/login/mfa""#), "{page}");
    let code = pyotp_code(&secret, app.core.clock.now());
    let tokens = tokens_of(&app, "spa", &second_step(&mut b, &page, &code).await).await;
    let id = jwt_parts(tokens["id_token"].as_str().unwrap()).1;
    assert_eq!(id["acr"], "urn:tessera:acr:mfa");
    let resp = b.authorize("spa", &[mfa, ("prompt", "none")]).await;
    assert!(query_of(&resp).contains_key("code"));
}

#[tokio::test]
async fn recovery_codes_are_shown_once_and_each_signs_in_once() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    app.user("alice", PASSWORD, &[]).await;
    let secret = enrolled(&app, "alice").await;
    next_step(&app);
    let mut acct = Browser::new(&app);
    account_sign_in(&mut acct, "alice").await;
    let page = acct.get("/account").await.text().await.unwrap();
    let code = pyotp_code(&secret, app.core.clock.now());
    let f = [
        ("csrf".to_string(), csrf_of(&page)),
        ("code".to_string(), code),
    ];
    assert_eq!(acct.post("/account/mfa", &f).await.status(), 303);
    let f = [("csrf".to_string(), csrf_of(&page))];
    let shown = acct
        .post("/account/recovery-codes", &f)
        .await
        .text()
        .await
        .unwrap();
    let codes: Vec<String> = shown
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{shown}");
    let page = acct.get("/account").await.text().await.unwrap();
    assert!(page.contains("10 unused recovery codes"), "{page}");
    assert!(!page.contains(&codes[0]), "shown once");

    let mut b = Browser::new(&app);
    let page = second_step_page(&mut b, "bank").await;
    let resp = second_step(&mut b, &page, &codes[3].to_uppercase()).await;
    let tokens = tokens_of(&app, "bank", &resp).await;
    assert_eq!(
        jwt_parts(tokens["access_token"].as_str().unwrap()).1["amr"][2],
        "mfa"
    );

    let mut again = Browser::new(&app);
    let page = second_step_page(&mut again, "bank").await;
    let resp = second_step(&mut again, &page, &codes[3]).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("That code is not right")
    );
}

#[tokio::test]
async fn a_user_without_a_second_factor_is_sent_to_set_one_up() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    app.user("alice", PASSWORD, &[]).await;
    let mut b = Browser::new(&app);
    let resp = password_step(&mut b, "bank", &[]).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Set up a second factor") && page.contains(r#"href="/account""#),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_sent_twice_at_once_signs_in_once() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    app.user("alice", PASSWORD, &[]).await;
    let secret = enrolled(&app, "alice").await;
    next_step(&app);
    let (mut one, mut two) = (Browser::new(&app), Browser::new(&app));
    let p1 = second_step_page(&mut one, "bank").await;
    let p2 = second_step_page(&mut two, "bank").await;
    let code = pyotp_code(&secret, app.core.clock.now());
    let (r1, r2) = tokio::join!(
        second_step(&mut one, &p1, &code),
        second_step(&mut two, &p2, &code)
    );
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 303], "one winner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_rewrap_reseals_the_authenticator_keys() {
    let app = TestApp::spawn().await;
    mfa_client(&app, "bank").await;
    app.user("alice", PASSWORD, &[]).await;
    // Enrolled a step before the wall clock, which the restarted server reads.
    app.step_back(std::time::Duration::from_secs(30));
    let secret = enrolled(&app, "alice").await;
    let new_kek = app.rewrap_kek();
    std::fs::write(app.dir.path().join("keys").join("kek"), &new_kek).unwrap();
    let app = app.restart().await;

    let mut b = Browser::new(&app);
    let page = second_step_page(&mut b, "bank").await;
    let code = pyotp_code(&secret, app.core.clock.now());
    let resp = second_step(&mut b, &page, &code).await;
    assert_eq!(resp.status(), 303, "the key opens under the new KEK");
}
