//! An authenticator app added on `/account` and a second step, in Chromium
//! (`tests/browser/mfa.mjs`, which computes TOTP codes with node:crypto); the screenshots
//! land in the target directory (docs/account-*.png are copies).

use serde_json::json;
use tessera::domain::clients::NewClient;

use super::sign_in::{CHROMIUM, chromium_present, node, target_dir};
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_adds_an_authenticator_and_signs_in_with_a_second_step() {
    if !chromium_present() {
        return;
    }
    let app = TestApp::spawn().await;
    let redirect = format!("http://localhost:{}/callback", super::free_port());
    app.client_with(NewClient {
        id: "bank".into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![redirect.clone()],
        require_mfa: true,
        ..Default::default()
    })
    .await;
    app.user("alice", "correct horse battery", &[]).await;
    let profile = tempfile::tempdir().unwrap();
    let shot = |name: &str| target_dir().join(format!("{name}.png"));
    let args = json!({
        "base": app.addr,
        "chromium": CHROMIUM,
        "userDataDir": profile.path(),
        "shots": {
            "account": shot("account-page"),
            "enroll": shot("account-totp"),
            "codes": shot("account-recovery-codes"),
            "second": shot("sign-in-second-step"),
        },
        "username": "alice",
        "password": "correct horse battery",
        "app": {"clientId": "bank", "redirectUri": redirect},
    });
    let out = tokio::task::spawn_blocking(move || node("mfa.mjs", &args))
        .await
        .unwrap();
    assert_eq!(out["scripts"], 0);
    let uri = out["enroll"]["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/127.0.0.1:alice?secret="),
        "{out:#}"
    );
    assert_eq!(
        (&out["enroll"]["qr"], &out["enroll"]["codeField"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(out["listed"], json!(["Phone"]), "{out:#}");
    assert_eq!(out["recoveryCodes"], 10);
    assert_eq!(out["secondStep"]["title"], "Second step · tessera");
    let resp = crate::oauth::code_flow::exchange(
        &app,
        "bank",
        out["code"].as_str().unwrap(),
        out["verifier"].as_str().unwrap(),
        &redirect,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let tokens: serde_json::Value = resp.json().await.unwrap();
    let claims = jwt_parts(tokens["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
}
