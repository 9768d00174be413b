//! Emergency revocation (`--revoke-current`) and changing the signing algorithm (`--alg`).

use std::time::Duration;

use reqwest::{Method, header};
use serde_json::{Value, json};
use tessera::config::SigningAlg;

use crate::keys::jwks::verify_with_jwks;
use crate::keys::keys_lifecycle::*;
use crate::support::*;

/// The emergency rotation over the CLI: the running server withdraws the key within
/// a second; a consumer long-polling `/events` learns of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_current_withdraws_the_key_and_its_tokens() {
    let app = TestApp::with(&[("jwks_max_age", "1")]).await;
    let admin = app.admin_token().await;
    let rs = app.service("rs", &["introspect", "events"]).await;
    let rs_token = app.client_token("rs", &rs).await;
    let old = kid_of(&admin);
    let next = the(&keys_list(&app), "next");

    // A long-poll from now on, opened with a token that is about to be revoked.
    let poll = app
        .with_bearer(Method::GET, "/events?wait=10", &rs_token)
        .header(header::ACCEPT, "application/json")
        .send();
    let poll = tokio::spawn(poll);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // No wait for the lead: an emergency does not wait.
    let (code, _, err) = app.cli(&["keys", "rotate", "--revoke-current"], None);
    assert_eq!(code, 0, "keys rotate --revoke-current: {err}");
    let gone = eventually(Duration::from_secs(2), || async {
        !kids(&jwks(&app).await).contains(&old)
    })
    .await;
    assert!(gone, "the revoked key is still published after 2 s");
    let published = jwks(&app).await;
    assert!(kids(&published).contains(&next), "{published}");
    assert_eq!(
        published["keys"].as_array().unwrap().len(),
        2,
        "{published}"
    );
    assert!(!verify_with_jwks(&admin, &published));

    assert_eq!(userinfo_status(&app, &admin).await, 401);
    let r = app.introspect("rs", &rs, &admin).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));

    let r = poll.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let events = body["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "keys.rotated" && e["kid"] == old && e["reason"] == "revoked"),
        "keys.rotated naming {old} with reason revoked: {body}"
    );

    // A new admin token, signed by the former next key.
    let admin = app.login("console", "root", "root password 1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(kid_of(&admin), next);
    let listed = admin_keys(&app, &admin).await;
    let state = |kid: &str| {
        listed
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state(&old).as_deref(), Some("revoked"), "{listed:?}");
    assert_eq!(state(&next).as_deref(), Some("active"), "{listed:?}");
    assert!(
        listed
            .iter()
            .find(|k| k["kid"] == old)
            .is_some_and(|k| k["revoked_at"].is_string()),
        "{listed:?}"
    );
    assert_eq!(
        rotated_events(&app).await,
        [(old.clone(), "revoked".into())]
    );

    // Later reloads never bring it back.
    app.core.signing.maintain_keys().await.unwrap();
    assert!(!kids(&jwks(&app).await).contains(&old));
    assert_eq!(userinfo_status(&app, &admin).await, 200);
}

/// The emergency rotation over the admin API takes effect on this server at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_current_over_the_admin_api_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let rs = app.service("rs", &["introspect"]).await;
    let service_token = app.client_token("rs", &rs).await;
    let old = kid_of(&admin);
    // jwks_max_age is 600 s: a plain rotation is refused, the emergency one is not.
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .json(&json!({"revoke_current": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_ne!(body["active_kid"], old.as_str(), "{body}");

    let published = jwks_at(&app.http, &app.addr, 600).await;
    assert!(!kids(&published).contains(&old), "{published}");
    assert_eq!(userinfo_status(&app, &admin).await, 401);
    let r = app
        .with_bearer(Method::GET, "/admin/keys", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the admin's own token was signed by the revoked key"
    );
    let r = app.introspect("rs", &rs, &admin).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
    // The introspecting client authenticates with its secret; its own token is dead too.
    let r = app.introspect("rs", &rs, &service_token).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
    let keys = keys_list(&app);
    assert_eq!(in_state(&keys, "revoked"), std::slice::from_ref(&old));
    assert_eq!(rotated_events(&app).await, [(old, "revoked".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_sets_the_next_key_and_signs_from_the_following_rotation() {
    let app = TestApp::with_keys_aged(LEAD_OVER, &[("jwks_max_age", "1")]).await;
    let secret = app.service("svc", &[]).await;
    let es256 = app.client_token("svc", &secret).await;
    assert_eq!(jwt_parts(&es256).0["alg"], "ES256");

    // The CLI sets the algorithm. The keys it creates are young on the system clock,
    // which only time moves: the following rotations are this server's, its clock
    // moved past each next key's lead.
    let (code, _, err) = app.cli(&["keys", "rotate", "--alg", "EdDSA"], None);
    assert_eq!(code, 0, "{err}");
    let keys = keys_list(&app);
    let ed = the(&keys, "next");
    assert_eq!(
        keys.iter().find(|k| k.kid == ed).unwrap().alg,
        "EdDSA",
        "{keys:?}"
    );
    let active = the(&keys, "active");
    wait_until_signing(&app, &active).await;
    let still_es256 = app.client_token("svc", &secret).await;
    assert_eq!(
        jwt_parts(&still_es256).0["alg"],
        "ES256",
        "the new algorithm waits for the next rotation"
    );
    let published = jwks(&app).await;
    let jwk = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == ed.as_str())
        .unwrap_or_else(|| panic!("the EdDSA next key is published: {published}"))
        .clone();
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"]),
        (
            &Value::from("OKP"),
            &Value::from("Ed25519"),
            &Value::from("EdDSA")
        )
    );

    rotate_after_the_lead(&app, Some(SigningAlg::RS256)).await;
    wait_until_signing(&app, &ed).await;
    let eddsa = app.client_token("svc", &secret).await;
    let (h, _) = jwt_parts(&eddsa);
    assert_eq!(
        (h["alg"].as_str(), h["kid"].as_str()),
        (Some("EdDSA"), Some(ed.as_str()))
    );
    let rsa = the(&keys_list(&app), "next");

    rotate_after_the_lead(&app, None).await;
    wait_until_signing(&app, &rsa).await;
    let rs256 = app.client_token("svc", &secret).await;
    assert_eq!(jwt_parts(&rs256).0["alg"], "RS256");

    let published = jwks(&app).await;
    for token in [&es256, &still_es256, &eddsa, &rs256] {
        assert!(
            verify_with_jwks(token, &published),
            "{} token verifies: {published}",
            jwt_parts(token).0["alg"]
        );
    }
    let jwk = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == rsa.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().unwrap())
        .unwrap();
    assert!(
        n.len() >= 256 && n[0] != 0,
        "modulus of {} bits",
        n.len() * 8
    );
    let admin = app.admin_token().await;
    assert_eq!(jwt_parts(&admin).0["alg"], "RS256");
    assert_eq!(userinfo_status(&app, &admin).await, 200);
}
