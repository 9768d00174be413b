//! Passkeys in Chromium with a CDP virtual authenticator (`tests/browser/passkeys.mjs`):
//! added on `/account`, then signing in alone and as the second step; a replayed answer
//! and a cloned authenticator refused. Tokens checked with PyJWT. The screenshots land in
//! the target directory (docs/account-passkeys.png and docs/sign-in-passkey.png are copies).

use serde_json::json;
use tessera::domain::clients::NewClient;

use super::sign_in::{CHROMIUM, chromium_present, node, target_dir};
use crate::helpers::*;
use crate::keys::jwks::fetch_jwks;
use crate::keys::jwks_pyjwt::{pyjwt_verify, pyjwt_verify_id_token};

async fn code_client(app: &TestApp, id: &str, redirect: &str, require_mfa: bool) {
    app.client_with(NewClient {
        id: id.into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![redirect.into()],
        require_mfa,
        ..Default::default()
    })
    .await;
}

async fn tokens(
    app: &TestApp,
    client: &str,
    leg: &serde_json::Value,
    redirect: &str,
) -> serde_json::Value {
    let resp = crate::oauth::code_flow::exchange(
        app,
        client,
        leg["code"].as_str().unwrap_or_else(|| panic!("{leg:#}")),
        leg["verifier"].as_str().unwrap(),
        redirect,
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_adds_a_passkey_and_signs_in_with_it() {
    if !chromium_present() {
        return;
    }
    let app = TestApp::on_localhost().await;
    let redirect = format!("http://localhost:{}/callback", super::free_port());
    code_client(&app, "notes", &redirect, false).await;
    code_client(&app, "bank", &redirect, true).await;
    let alice = app.user("alice", "correct horse battery", &[]).await;
    let profile = tempfile::tempdir().unwrap();
    let shot = |name: &str| target_dir().join(format!("{name}.png"));
    let args = json!({
        "base": app.addr,
        "chromium": CHROMIUM,
        "userDataDir": profile.path(),
        "shots": {"account": shot("account-passkeys"), "login": shot("sign-in-passkey")},
        "username": "alice",
        "password": "correct horse battery",
        "plain": {"clientId": "notes", "redirectUri": redirect},
        "bank": {"clientId": "bank", "redirectUri": redirect},
    });
    let out = tokio::task::spawn_blocking(move || node("passkeys.mjs", &args))
        .await
        .unwrap();
    assert_eq!(out["inlineScripts"], 0);
    assert_eq!(out["listed"], json!(["Laptop"]), "{out:#}");
    assert_eq!(out["registered"], 1, "a resident key: {out:#}");

    // The passkey alone, with user verification: swk and mfa.
    let jwks = fetch_jwks(&app).await;
    let t = tokens(&app, "notes", &out["alone"], &redirect).await;
    let id_token = t["id_token"].as_str().unwrap();
    let (status, text) = pyjwt_verify_id_token(id_token, &jwks, &app.addr, "notes").await;
    assert_eq!(status, 0, "{text}");
    assert!(
        text.contains("amr swk mfa; acr urn:tessera:acr:mfa"),
        "{text}"
    );
    assert_eq!(jwt_parts(id_token).1["sub"], alice.as_str());
    let (status, text) = pyjwt_verify(t["access_token"].as_str().unwrap(), &jwks, &app.addr).await;
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("amr swk mfa;"), "{text}");

    // The same through the browser's autofill (conditional mediation).
    let t = tokens(&app, "notes", &out["autofill"], &redirect).await;
    let claims = jwt_parts(t["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["amr"], json!(["swk", "mfa"]));

    // The captured answer posted again: its challenge was spent.
    assert_eq!(out["replay"]["status"], 400, "{out:#}");
    let replay = out["replay"]["text"].as_str().unwrap();
    assert!(replay.contains("expired or was used already"), "{replay}");

    // After a password, the passkey as the second step of an app requiring MFA.
    let t = tokens(&app, "bank", &out["second"], &redirect).await;
    let claims = jwt_parts(t["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["amr"], json!(["pwd", "swk", "mfa"]));

    // The clone: refused, and its counter stays where the real authenticator left it.
    assert!(out["signCount"].as_u64().unwrap() > 1, "{out:#}");
    let cloned = out["cloned"]["text"].as_str().unwrap_or_default();
    assert!(cloned.contains("counter went back"), "{out:#}");
    let counts: Vec<(i64,)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT sign_count FROM passkeys WHERE user_id = $1",
        &[alice.as_str().into()],
    )
    .await;
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].0, out["signCount"].as_i64().unwrap());
}
