//! Passkeys over HTTP (no browser: tests/api/browser/passkeys.rs has the real ceremonies):
//! the options endpoints, and every bad answer to the finish endpoints a 4xx with a
//! clear message (malformed, unknown challenge, expired challenge, unknown passkey).

use serde_json::{Value, json};
use tessera::crypto::{b64, sha256};

use super::*;
use crate::oauth::code_flow::Browser;

/// The login page's first form's hidden fields (the passkey form repeats them).
fn login_fields(page: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in hidden_fields(page) {
        if out.iter().any(|(seen, _)| *seen == k) {
            break;
        }
        out.push((k, v));
    }
    out
}

/// A well-formed assertion (WebAuthn's JSON) for `challenge` that no key signed.
fn forged_answer(app: &TestApp, challenge: &str, credential_id: &[u8]) -> String {
    let client_data = json!({
        "type": "webauthn.get",
        "challenge": challenge,
        "origin": app.addr,
        "crossOrigin": false,
    })
    .to_string();
    let mut auth_data = sha256(b"localhost").to_vec();
    auth_data.push(0x05);
    auth_data.extend(7u32.to_be_bytes());
    json!({
        "id": b64(credential_id),
        "rawId": b64(credential_id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": b64(client_data.as_bytes()),
            "authenticatorData": b64(&auth_data),
            "signature": b64(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
            "userHandle": b64(&[7; 16]),
        },
    })
    .to_string()
}

async fn sign_in_options(app: &TestApp) -> Value {
    let resp = app
        .http
        .post(app.url("/passkeys/options"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

fn challenge_of(options: &Value) -> String {
    options["publicKey"]["challenge"]
        .as_str()
        .unwrap_or_else(|| panic!("{options:#}"))
        .to_string()
}

#[tokio::test]
async fn sign_in_options_name_the_issuers_host_and_no_credentials() {
    let app = TestApp::on_localhost().await;
    let options = sign_in_options(&app).await;
    let public = &options["publicKey"];
    assert_eq!(public["rpId"], "localhost", "{options:#}");
    assert!(
        public["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "discoverable: {options:#}"
    );
    assert_eq!(public["userVerification"], "preferred");
    let again = sign_in_options(&app).await;
    assert_ne!(challenge_of(&options), challenge_of(&again));
    assert_eq!(challenge_of(&options).len(), 22, "16 bytes, base64url");

    let resp = Browser::new(&app).get("/account").await;
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'; connect-src 'self'"),
        "{csp}"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("Sign in with a passkey"), "{page}");
    assert!(page.contains(r#"autocomplete="username webauthn""#));
    let js = app
        .http
        .get(app.url("/assets/passkeys.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn an_ip_address_issuer_offers_no_passkeys() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .post(app.url("/passkeys/options"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "passkeys_unavailable");
    let page = Browser::new(&app)
        .get("/account")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("passkey") && !page.contains("<script"),
        "{page}"
    );
}

#[tokio::test]
async fn bad_answers_at_the_login_page_are_4xx_with_a_reason() {
    let app = TestApp::on_localhost().await;
    app.user("alice", PASSWORD, &[]).await;
    mfa_client(&app, "bank").await;
    let mut b = Browser::new(&app);
    let page = b.authorize("bank", &[]).await.text().await.unwrap();
    assert!(page.contains("Sign in with a passkey"), "{page}");
    let fields = login_fields(&page);
    let post = |answer: String| {
        let mut f = fields.clone();
        f.push(("credential".into(), answer));
        f
    };

    let cases = [
        (String::new(), "missing"),
        ("{not json".into(), "could not be read"),
        (
            forged_answer(&app, &b64(&[1; 16]), &[9; 32]),
            "expired or was used already",
        ),
    ];
    for (answer, reason) in cases {
        let resp = b.post("/login/passkey", &post(answer.clone())).await;
        assert_eq!(resp.status(), 400, "{answer}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(reason), "{answer}: {text}");
    }

    // A fresh challenge, answered for a passkey nobody registered.
    let challenge = challenge_of(&sign_in_options(&app).await);
    let resp = b
        .post(
            "/login/passkey",
            &post(forged_answer(&app, &challenge, &[9; 32])),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("not registered here"), "{text}");
    // The challenge was spent by that answer.
    let resp = b
        .post(
            "/login/passkey",
            &post(forged_answer(&app, &challenge, &[9; 32])),
        )
        .await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("expired or was used already")
    );

    // A challenge five minutes old has expired.
    let challenge = challenge_of(&sign_in_options(&app).await);
    app.advance(std::time::Duration::from_secs(301));
    let resp = b
        .post(
            "/login/passkey",
            &post(forged_answer(&app, &challenge, &[9; 32])),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("expired or was used already")
    );
}

#[tokio::test]
async fn the_account_pages_passkey_endpoints_need_a_signed_in_user_and_its_csrf_token() {
    let app = TestApp::on_localhost().await;
    app.user("alice", PASSWORD, &[]).await;
    let mut b = Browser::new(&app);
    let page = b.get("/account").await.text().await.unwrap();
    let csrf = csrf_of(&page);
    let f = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let resp = b
        .post("/account/passkeys/options", &f(&[("csrf", "x")]))
        .await;
    assert_eq!(resp.status(), 403);
    let resp = b
        .post("/account/passkeys/options", &f(&[("csrf", &csrf)]))
        .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "login_required");

    account_sign_in(&mut b, "alice").await;
    let page = b.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("Add a passkey") && page.contains("No passkey yet"),
        "{page}"
    );
    let resp = b
        .post("/account/passkeys/options", &f(&[("csrf", &csrf)]))
        .await;
    assert_eq!(resp.status(), 200);
    let options: Value = resp.json().await.unwrap();
    let public = &options["publicKey"];
    assert_eq!(public["rp"]["id"], "localhost", "{options:#}");
    assert_eq!(public["user"]["name"], "alice");
    assert_eq!(public["authenticatorSelection"]["residentKey"], "required");

    for (answer, status) in [("", 400), ("{\"response\":{}}", 400)] {
        let resp = b
            .post(
                "/account/passkeys",
                &f(&[("csrf", &csrf), ("name", "Laptop"), ("credential", answer)]),
            )
            .await;
        assert_eq!(resp.status(), status, "{answer}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("The passkey was not added"), "{text}");
    }
}
