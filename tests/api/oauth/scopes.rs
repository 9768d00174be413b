//! What a client receives: a third-party client by the scopes the user consented to,
//! CORS per client, RS256 ID tokens for a client registered for them, and POST /userinfo.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tessera::domain::clients::NewClient;

use crate::helpers::*;
use crate::keys::jwks::fetch_jwks;
use crate::keys::jwks_pyjwt::pyjwt_verify_id_token;
use crate::oauth::code_flow::{
    APP, Browser, ORIGIN, VERIFIER, exchange, hidden_fields, query_of, spa,
};

const PASSWORD: &str = "correct horse battery";
const ELSEWHERE: &str = "https://other.example";

async fn partner(app: &TestApp) {
    app.client_with(NewClient {
        id: "partner".into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        scopes: ["openid", "profile", "roles", "events", "offline_access"]
            .map(String::from)
            .to_vec(),
        redirect_uris: vec![APP.into()],
        third_party: true,
        ..Default::default()
    })
    .await;
}

/// Alice signs in to `client` in a fresh browser with `extra` authorization parameters and
/// allows the consent page if one is shown; returns the page and the token response.
async fn consented(app: &TestApp, client: &str, extra: &[(&str, &str)]) -> (Option<String>, Value) {
    let mut b = Browser::new(app);
    let page = b.authorize(client, extra).await.text().await.unwrap();
    let mut resp = b.submit_login(&page, "alice", PASSWORD).await;
    let mut consent = None;
    if resp.status() == 200 {
        let page = resp.text().await.unwrap();
        let mut form = hidden_fields(&page);
        form.push(("decision".into(), "allow".into()));
        resp = b.post("/consent", &form).await;
        consent = Some(page);
    }
    assert_eq!(resp.status(), 303);
    let code = query_of(&resp)["code"].clone();
    let tokens = exchange(app, client, &code, VERIFIER, APP)
        .await
        .json()
        .await
        .unwrap();
    (consent, tokens)
}

fn access_claims(tokens: &Value) -> Value {
    jwt_parts(tokens["access_token"].as_str().unwrap()).1
}

async fn userinfo(app: &TestApp, token: &str) -> Value {
    let resp = app
        .with_bearer(Method::GET, "/userinfo", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn poll_events(app: &TestApp, token: &str, origin: Option<&str>) -> Response {
    let mut req = app
        .with_bearer(Method::GET, "/events?wait=0", token)
        .header("accept", "application/json");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_third_party_client_receives_only_what_the_user_consented_to() {
    let app = TestApp::spawn().await;
    partner(&app).await;
    let alice = app.user("alice", PASSWORD, &["editor"]).await;

    // `offline_access` without prompt=consent is ignored (OpenID Connect Core §11): the
    // page asks for `openid` only.
    let (page, tokens) = consented(&app, "partner", &[("scope", "openid offline_access")]).await;
    let page = page.expect("a consent page");
    assert!(page.contains("know who you are"), "{page}");
    assert!(!page.contains("<code>offline_access</code>"), "{page}");
    assert_eq!(tokens["scope"], "openid");

    // Only `openid` agreed: no roles, no username, no feed, no refresh token.
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(access_claims(&tokens)["roles"], json!([]));
    assert_eq!(userinfo(&app, at).await, json!({ "sub": alice }));
    let resp = poll_events(&app, at, None).await;
    assert_eq!(resp.status(), 403);
    assert!(challenge(&resp).contains("insufficient_scope"));
    // The consent to `openid` is remembered; it still gives no more.
    let (page, tokens) = consented(&app, "partner", &[("scope", "openid")]).await;
    assert!(page.is_none());
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");

    // Everything agreed, with prompt=consent: roles, username, the feed, a refresh token.
    let all = "openid profile roles events offline_access";
    let (page, tokens) = consented(&app, "partner", &[("scope", all), ("prompt", "consent")]).await;
    let page = page.expect("prompt=consent asks");
    for words in [
        "see your username",
        "see your roles",
        "security events",
        "stay signed in",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(access_claims(&tokens)["roles"], json!(["editor"]));
    let info = userinfo(&app, at).await;
    assert_eq!(info["username"], "alice");
    assert_eq!(info["roles"], json!(["editor"]));
    assert_eq!(poll_events(&app, at, None).await.status(), 200);
    let rt = tokens["refresh_token"].as_str().unwrap();
    let refreshed: Value = app.refresh("partner", rt).await.json().await.unwrap();
    assert_eq!(access_claims(&refreshed)["roles"], json!(["editor"]));
    // Narrowed at refresh to `openid`: the roles go too.
    let narrowed: Value = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "partner"),
            (
                "refresh_token",
                refreshed["refresh_token"].as_str().unwrap(),
            ),
            ("scope", "openid offline_access"),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(access_claims(&narrowed)["roles"], json!([]), "{narrowed}");
}

#[tokio::test]
async fn a_first_party_client_keeps_roles_the_feed_and_its_refresh_token() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", PASSWORD, &["editor"]).await;
    let tokens = Browser::new(&app).tokens("spa", "alice", PASSWORD).await;
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(access_claims(&tokens)["roles"], json!(["editor"]));
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, at).await["username"], "alice");
    assert_eq!(poll_events(&app, at, None).await.status(), 200);
}

/// `/token` for `client` from `origin`.
async fn refresh_from(app: &TestApp, client: &str, rt: &str, origin: &str) -> Response {
    app.http
        .post(app.url("/token"))
        .header("origin", origin)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", rt),
        ])
        .send()
        .await
        .unwrap()
}

fn allowed_origin(resp: &Response) -> Option<&str> {
    resp.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn an_origin_may_call_tessera_only_for_the_clients_that_registered_it() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    // Another app registers ELSEWHERE, so that origin passes a preflight.
    app.client_with(NewClient {
        id: "other".into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![format!("{ELSEWHERE}/cb")],
        ..Default::default()
    })
    .await;
    let secret = app.service("svc", &[]).await;
    app.user("alice", PASSWORD, &["editor"]).await;
    let tokens = Browser::new(&app).tokens("spa", "alice", PASSWORD).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let at = tokens["access_token"].as_str().unwrap();

    let preflight = app
        .http
        .request(Method::OPTIONS, app.url("/token"))
        .header("origin", ELSEWHERE)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(allowed_origin(&preflight), Some(ELSEWHERE));

    // The actual request from ELSEWHERE for `spa`: refused before the token is used.
    let resp = refresh_from(&app, "spa", rt, ELSEWHERE).await;
    assert_eq!(allowed_origin(&resp), None);
    assert_oauth_error(resp, 400, "unauthorized_client").await;
    let resp = refresh_from(&app, "spa", rt, ORIGIN).await;
    assert_eq!(resp.status(), 200, "the refresh token was not consumed");
    assert_eq!(allowed_origin(&resp), Some(ORIGIN));

    // A confidential client that registered no origin, called from a registered one.
    let resp = app
        .http
        .post(app.url("/token"))
        .header("origin", ORIGIN)
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&resp), None);
    assert_oauth_error(resp, 400, "unauthorized_client").await;

    let resp = app
        .http
        .post(app.url("/revoke"))
        .header("origin", ELSEWHERE)
        .form(&[("client_id", "spa"), ("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&resp), None);
    assert_oauth_error(resp, 400, "unauthorized_client").await;

    // Bearer endpoints: the token's client must have registered the origin.
    for method in [Method::GET, Method::POST] {
        let from = |origin: &'static str| {
            app.with_bearer(method.clone(), "/userinfo", at)
                .header("origin", origin)
                .send()
        };
        let resp = from(ELSEWHERE).await.unwrap();
        assert_eq!(resp.status(), 403, "{method}");
        assert_eq!(allowed_origin(&resp), None);
        let resp = from(ORIGIN).await.unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        assert_eq!(allowed_origin(&resp), Some(ORIGIN));
    }
    let resp = poll_events(&app, at, Some(ELSEWHERE)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(allowed_origin(&resp), None);
    let resp = poll_events(&app, at, Some(ORIGIN)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(allowed_origin(&resp), Some(ORIGIN));
}

#[tokio::test]
async fn userinfo_answers_post_with_the_token_in_the_header_or_the_body() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let alice = app.user("alice", PASSWORD, &["editor"]).await;
    let tokens = Browser::new(&app).tokens("spa", "alice", PASSWORD).await;
    let at = tokens["access_token"].as_str().unwrap();
    let by_get = userinfo(&app, at).await;
    assert_eq!(by_get["sub"], alice.as_str());

    let resp = app
        .with_bearer(Method::POST, "/userinfo", at)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), by_get);
    let resp = app.post_form("/userinfo", &[("access_token", at)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), by_get);

    // Two ways at once (RFC 6750 §2), none, or a bad one.
    let resp = app
        .with_bearer(Method::POST, "/userinfo", at)
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let resp = app.post_form("/userinfo", &[("other", "x")]).await;
    assert_eq!(resp.status(), 401);
    let resp = app
        .post_form("/userinfo", &[("access_token", "not a token")])
        .await;
    assert_invalid_token(resp, "a malformed token").await;
    let resp = app
        .post_form("/userinfo", &[("access_token", "abc.def.ghi")])
        .await;
    assert_invalid_token(resp, "a forged token").await;
}

#[tokio::test]
async fn a_client_registered_for_rs256_gets_rs256_id_tokens_on_an_es256_deployment() {
    let app = TestApp::spawn().await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
    spa(&app, "spa", false).await;
    app.client_with(NewClient {
        id: "rp".into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![APP.into()],
        id_token_signed_response_alg: Some("RS256".into()),
        ..Default::default()
    })
    .await;
    let refused = app
        .core
        .clients
        .create(
            &tessera::domain::audit::Actor::cli(),
            NewClient {
                id: "eddsa".into(),
                id_token_signed_response_alg: Some("EdDSA".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(refused.is_err(), "EdDSA is not this deployment's alg");
    app.user("alice", PASSWORD, &[]).await;

    let jwks = fetch_jwks(&app).await;
    let rsa_kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["alg"] == "RS256")
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        rsa_kids(&jwks).len(),
        2,
        "published at registration: active and next"
    );

    let tokens = Browser::new(&app).tokens("rp", "alice", PASSWORD).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let (header, claims) = jwt_parts(id_token);
    assert_eq!(header["alg"], "RS256");
    assert!(rsa_kids(&jwks).contains(&header["kid"].as_str().unwrap().to_string()));
    let at = tessera::crypto::sha256(tokens["access_token"].as_str().unwrap().as_bytes());
    assert_eq!(claims["at_hash"], tessera::crypto::b64(&at[..16]).as_str());
    assert_eq!(
        jwt_parts(tokens["access_token"].as_str().unwrap()).0["alg"],
        "ES256"
    );
    let (code, out) = pyjwt_verify_id_token(id_token, &jwks, &app.addr, "rp").await;
    assert_eq!(code, 0, "PyJWT rejects the RS256 ID token: {out}");
    assert!(out.contains("verified RS256"), "{out}");
    // Other clients keep the deployment's alg.
    let tokens = Browser::new(&app).tokens("spa", "alice", PASSWORD).await;
    assert_eq!(
        jwt_parts(tokens["id_token"].as_str().unwrap()).0["alg"],
        "ES256"
    );

    // The RS256 keys rotate with the main key: the next one signs, the old one stays published.
    let old_kid = header["kid"].as_str().unwrap().to_string();
    app.advance(std::time::Duration::from_secs(700));
    let message = app
        .core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, false)
        .await
        .unwrap();
    assert!(message.contains("RS256 ID-token keys"), "{message}");
    // PyJWT checks the ID token's times against the system's clock: go back to it.
    app.step_back(std::time::Duration::from_secs(700));
    let tokens = Browser::new(&app).tokens("rp", "alice", PASSWORD).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let kid = jwt_parts(id_token).0["kid"].as_str().unwrap().to_string();
    let jwks = fetch_jwks(&app).await;
    let published = rsa_kids(&jwks);
    assert_ne!(kid, old_kid);
    assert!(
        published.contains(&kid) && published.contains(&old_kid),
        "{published:?}"
    );
    assert_eq!(published.len(), 3, "retired, active, next");
    let (code, out) = pyjwt_verify_id_token(id_token, &jwks, &app.addr, "rp").await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_registers_a_client_for_rs256_id_tokens() {
    let app = TestApp::spawn().await;
    let (code, _, err) = app.cli(
        &[
            "client",
            "add",
            "rp",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            APP,
            "--id-token-alg",
            "RS256",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let c = app
        .core
        .clients
        .get(&app.core.db, "rp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.id_token_alg, Some(tessera::config::SigningAlg::RS256));
    let (code, _, err) = app.cli(&["client", "add", "bad", "--id-token-alg", "HS256"], None);
    assert_ne!(code, 0);
    assert!(err.contains("id_token_signed_response_alg"), "{err}");
}
