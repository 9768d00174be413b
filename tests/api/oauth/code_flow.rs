//! The authorization code flow with PKCE, the login page, the browser session,
//! consent, OpenID Connect and CORS, driven over HTTP like a browser would.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::Value;
use sha2_free::challenge_of;
use tessera::domain::clients::NewClient;
use tessera::domain::permissions::Change;

use crate::helpers::*;
use crate::sql;

pub(crate) const APP: &str = "https://app.example/cb";
pub(crate) const ORIGIN: &str = "https://app.example";

mod sha2_free {
    /// The S256 challenge of a verifier, with tessera's own SHA-256 helper.
    pub(super) fn challenge_of(verifier: &str) -> String {
        tessera::crypto::b64(&tessera::crypto::sha256(verifier.as_bytes()))
    }
}

pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier";

/// A browser: cookies kept by hand, redirects not followed.
pub(crate) struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &Response) {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
    }

    pub(crate) async fn get(&mut self, path_and_query: &str) -> Response {
        let resp = self
            .app
            .http
            .get(self.app.url(path_and_query))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(String, String)]) -> Response {
        let resp = self
            .app
            .http
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    /// Opens `/authorize` for `client` with `extra` parameters overriding the defaults.
    pub(crate) async fn authorize(&mut self, client: &str, extra: &[(&str, &str)]) -> Response {
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", APP),
            ("scope", "openid"),
            ("state", "s t&ate"),
            ("code_challenge_method", "S256"),
            ("nonce", "n-0S6_WzA2Mj"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.push(("code_challenge".into(), challenge_of(VERIFIER)));
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push((k.to_string(), v.to_string()));
            }
        }
        let q = serde_urlencoded_pairs(&params);
        self.get(&format!("/authorize?{q}")).await
    }

    /// Submits the login form on `page` with these credentials.
    pub(crate) async fn submit_login(
        &mut self,
        page: &str,
        username: &str,
        password: &str,
    ) -> Response {
        let mut form = hidden_fields(page);
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        self.post("/login", &form).await
    }

    /// Signs in through the page and returns the code.
    pub(crate) async fn sign_in(&mut self, client: &str, username: &str, password: &str) -> String {
        let page = self.authorize(client, &[]).await.text().await.unwrap();
        let resp = self.submit_login(&page, username, password).await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        query_of(&resp)["code"].clone()
    }

    /// Signs in through the page and exchanges the code: the token response.
    pub(crate) async fn tokens(&mut self, client: &str, username: &str, password: &str) -> Value {
        let code = self.sign_in(client, username, password).await;
        exchange(self.app, client, &code, VERIFIER, APP)
            .await
            .json()
            .await
            .unwrap()
    }
}

pub(crate) fn serde_urlencoded_pairs(params: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The hidden inputs of the page's form.
pub(crate) fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in page.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = part.split_once('"').unwrap();
        let value = rest
            .split_once("value=\"")
            .unwrap()
            .1
            .split_once('"')
            .unwrap()
            .0;
        out.push((
            name.to_string(),
            value.replace("&amp;", "&").replace("&quot;", "\""),
        ));
    }
    out
}

/// The query parameters of a redirect's `Location`.
pub(crate) fn query_of(resp: &Response) -> HashMap<String, String> {
    let loc = resp
        .headers()
        .get("location")
        .expect("Location")
        .to_str()
        .unwrap();
    let url = url::Url::parse(loc).unwrap();
    url.query_pairs().into_owned().collect()
}

pub(crate) async fn spa(app: &TestApp, id: &str, third_party: bool) {
    app.client_with(NewClient {
        id: id.into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec![APP.into(), "http://127.0.0.1/native".into()],
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        third_party,
        ..Default::default()
    })
    .await;
}

pub(crate) async fn exchange(
    app: &TestApp,
    client: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Response {
    app.token(&[
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", redirect),
    ])
    .await
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_browser_signs_in_and_the_app_gets_tokens_and_an_id_token() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let sub = app
        .user("alice", "correct horse battery", &["reader"])
        .await;
    let mut b = Browser::new(&app);
    let page = b.authorize("spa", &[]).await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' https://app.example"),
        "{csp}"
    );
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<label for="username">Username</label>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"autocomplete="username""#)
            && html.contains(r#"autocomplete="current-password""#)
    );
    assert!(!html.contains("<script"));
    let resp = b
        .submit_login(&html, "alice", "correct horse battery")
        .await;
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("tessera_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let q = query_of(&resp);
    assert_eq!(q["state"], "s t&ate");
    assert_eq!(q["iss"], app.addr);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://app.example/cb?")
    );
    let tokens: Value = exchange(&app, "spa", &q["code"], VERIFIER, APP)
        .await
        .json()
        .await
        .unwrap();
    let access = claims(tokens["access_token"].as_str().unwrap());
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(access["sub"], sub.as_str());
    assert!(
        access["ver"].is_i64() && access["sid"].is_string(),
        "{access}"
    );
    assert_eq!(id["sub"], sub.as_str());
    assert_eq!(id["aud"], "spa");
    assert_eq!(id["iss"], app.addr.as_str());
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["sid"], access["sid"]);
    assert!(id["auth_time"].is_i64() && id["exp"].is_i64() && id["iat"].is_i64());
    let at = tessera::crypto::sha256(tokens["access_token"].as_str().unwrap().as_bytes());
    assert_eq!(id["at_hash"], tessera::crypto::b64(&at[..16]).as_str());
    let (header, _) = jwt_parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    // The family is a refresh family like any other.
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh("spa", rt).await.status(), 200);
    // userinfo: OIDC claims beside tessera's own.
    let info: Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["sub"], sub.as_str());
    assert!(info["roles"].is_array() && info["stale"] == false);
    // A second sign-in: the browser session, no form.
    let again = b.authorize("spa", &[]).await;
    assert_eq!(again.status(), 303);
    assert!(query_of(&again).contains_key("code"));
    // prompt=login and max_age=0 show the form again.
    assert_eq!(
        b.authorize("spa", &[("prompt", "login")]).await.status(),
        200
    );
    assert_eq!(b.authorize("spa", &[("max_age", "0")]).await.status(), 200);
}

#[tokio::test]
async fn pkce_is_required_and_plain_is_refused_back_at_the_app() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let mut b = Browser::new(&app);
    for extra in [
        vec![("code_challenge", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "short")],
    ] {
        let resp = b.authorize("spa", &extra).await;
        assert_eq!(resp.status(), 303, "{extra:?}");
        let q = query_of(&resp);
        assert_eq!(q["error"], "invalid_request", "{extra:?}");
        assert_eq!(q["state"], "s t&ate");
        assert_eq!(q["iss"], app.addr);
    }
    let resp = b.authorize("spa", &[("response_type", "token")]).await;
    assert_eq!(query_of(&resp)["error"], "unsupported_response_type");
    let resp = b.authorize("spa", &[("scope", "admin")]).await;
    assert_eq!(query_of(&resp)["error"], "invalid_scope");
}

#[tokio::test]
async fn an_unknown_client_or_redirect_uri_is_an_error_page_never_a_redirect() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let mut b = Browser::new(&app);
    for (client, extra) in [
        ("spa", vec![("redirect_uri", "https://app.example/cc")]),
        ("spa", vec![("redirect_uri", "https://app.example/cb/")]),
        ("spa", vec![("redirect_uri", "")]),
        ("nobody", vec![]),
        ("spa", vec![("client_id", "")]),
    ] {
        let resp = b.authorize(client, &extra).await;
        assert_eq!(resp.status(), 400, "{client} {extra:?}");
        assert!(resp.headers().get("location").is_none());
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Loopback redirect URIs may vary the port (RFC 8252 §7.3).
    let resp = b
        .authorize("spa", &[("redirect_uri", "http://127.0.0.1:49152/native")])
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_wrong_verifier_another_redirect_uri_or_another_client_get_invalid_grant() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    spa(&app, "other", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let code = b.sign_in("spa", "alice", "correct horse battery").await;
    let wrong = "x".repeat(43);
    assert_oauth_error(
        exchange(&app, "spa", &code, &wrong, APP).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        exchange(&app, "spa", &code, VERIFIER, "https://app.example/cc").await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        exchange(&app, "other", &code, VERIFIER, APP).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        exchange(&app, "spa", &code, "short", APP).await,
        400,
        "invalid_request",
    )
    .await;
    // None of those burnt the code.
    assert_eq!(
        exchange(&app, "spa", &code, VERIFIER, APP).await.status(),
        200
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_family_it_issued_only_with_the_verifier() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let code = b.sign_in("spa", "alice", "correct horse battery").await;
    let tokens: Value = exchange(&app, "spa", &code, VERIFIER, APP)
        .await
        .json()
        .await
        .unwrap();
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_string();
    // Anyone who saw the code (a public client needs no secret) may replay it with a
    // verifier of their own, or at another redirect URI: refused, and nothing revoked.
    let guessed = "x".repeat(43);
    for (verifier, redirect) in [
        (guessed.as_str(), APP),
        ("short", APP),
        (VERIFIER, "https://app.example/cc"),
    ] {
        assert_oauth_error(
            exchange(&app, "spa", &code, verifier, redirect).await,
            400,
            "invalid_grant",
        )
        .await;
        let resp = app.refresh("spa", &rt).await;
        assert_eq!(resp.status(), 200, "{verifier} {redirect}: still alive");
        let next: Value = resp.json().await.unwrap();
        rt = next["refresh_token"].as_str().unwrap().to_string();
    }
    // With the verifier it is the code's reuse: the family goes.
    assert_oauth_error(
        exchange(&app, "spa", &code, VERIFIER, APP).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(app.refresh("spa", &rt).await, 400, "invalid_grant").await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let (reason,): (String,) = sql::one(
        app.core.db.writer(),
        "SELECT revoke_reason FROM refresh_families WHERE id = $1",
        &[(&sid).into()],
    )
    .await;
    assert_eq!(reason, "authorization_code_reuse");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let code = b.sign_in("spa", "alice", "correct horse battery").await;
    // A code lives `authorization_code_ttl`: at its end it is refused.
    app.advance(app.core.cfg.authorization_code_ttl);
    assert_oauth_error(
        exchange(&app, "spa", &code, VERIFIER, APP).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token_and_says_the_same_for_every_failure() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    app.user("bob", "correct horse battery", &[]).await;
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &app.user("carol", "correct horse battery", &[]).await,
            Change::Disable,
        )
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    let page = b.authorize("spa", &[]).await.text().await.unwrap();
    let mut form: Vec<(String, String)> = hidden_fields(&page)
        .into_iter()
        .filter(|(k, _)| k != "csrf")
        .collect();
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "correct horse battery".into()));
    let resp = b.post("/login", &form).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("location").is_none());
    let mut bodies = Vec::new();
    for (user, pw) in [
        ("alice", "wrong"),
        ("nobody", "wrong"),
        ("carol", "correct horse battery"),
    ] {
        let resp = b.submit_login(&page, user, pw).await;
        assert_eq!(resp.status(), 200);
        let body = resp.text().await.unwrap().replace(user, "USER");
        assert!(body.contains("Incorrect username or password."));
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
}

#[tokio::test]
async fn sign_ins_through_the_page_are_throttled() {
    // `login_wait` 0: the delayed attempt is refused at once rather than waited for.
    let app = TestApp::with(&[("login_max_failures", "2"), ("login_wait", "0")]).await;
    app.advance(std::time::Duration::ZERO);
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let page = b.authorize("spa", &[]).await.text().await.unwrap();
    for _ in 0..2 {
        assert_eq!(b.submit_login(&page, "alice", "wrong").await.status(), 200);
    }
    let resp = b
        .submit_login(&page, "alice", "correct horse battery")
        .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let mut b = Browser::new(&app);
    let resp = b.authorize("spa", &[("prompt", "none")]).await;
    assert_eq!(resp.status(), 303);
    let q = query_of(&resp);
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "s t&ate");
}

#[tokio::test]
async fn a_password_change_or_a_disable_ends_the_browser_session() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let alice = app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("spa", "alice", "correct horse battery").await;
    assert_eq!(b.authorize("spa", &[]).await.status(), 303);
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &alice,
            Change::Password("another horse battery".to_string().into()),
        )
        .await
        .unwrap();
    assert_eq!(
        b.authorize("spa", &[]).await.status(),
        200,
        "the form again"
    );
    // A role change under policy `revoke` (the default) ends it too.
    b.sign_in("spa", "alice", "another horse battery").await;
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &alice,
            Change::Roles(vec!["x".into()]),
        )
        .await
        .unwrap();
    assert_eq!(
        b.authorize("spa", &[]).await.status(),
        200,
        "the form again"
    );
}

#[tokio::test]
async fn a_third_party_client_asks_consent_once_until_the_admin_withdraws_it() {
    let app = TestApp::spawn().await;
    spa(&app, "partner", true).await;
    let alice = app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let page = b.authorize("partner", &[]).await.text().await.unwrap();
    let resp = b
        .submit_login(&page, "alice", "correct horse battery")
        .await;
    assert_eq!(resp.status(), 200);
    let consent = resp.text().await.unwrap();
    assert!(
        consent.contains("openid") && consent.contains("Allow"),
        "{consent}"
    );
    let mut form = hidden_fields(&consent);
    form.push(("decision".into(), "allow".into()));
    let resp = b.post("/consent", &form).await;
    assert_eq!(resp.status(), 303);
    assert!(query_of(&resp).contains_key("code"));
    // Remembered.
    assert_eq!(b.authorize("partner", &[]).await.status(), 303);
    // Withdrawn by the admin.
    let token = app.admin_token().await;
    let resp = app
        .http
        .delete(app.url(&format!("/admin/users/{alice}/consents/partner")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let page = b.authorize("partner", &[]).await;
    assert_eq!(page.status(), 200);
    // Denied: back to the app with access_denied.
    let mut form = hidden_fields(&page.text().await.unwrap());
    form.push(("decision".into(), "deny".into()));
    assert_eq!(
        query_of(&b.post("/consent", &form).await)["error"],
        "access_denied"
    );
    // prompt=none with consent missing: consent_required.
    assert_eq!(
        query_of(&b.authorize("partner", &[("prompt", "none")]).await)["error"],
        "consent_required"
    );
}

#[tokio::test]
async fn end_session_asks_first_then_signs_out_and_redirects_only_to_registered_uris() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("spa", "alice", "correct horse battery").await;
    let resp = b
        .get("/end_session?client_id=spa&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());

    // Without an ID token hint the user is asked (a link on another site signs
    // nobody out), and the session lives until they answer.
    let page = b
        .get("/end_session?client_id=spa&state=xyz&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye")
        .await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' https://app.example"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"action="/end_session""#), "{html}");
    let resp = b.authorize("spa", &[("prompt", "none")]).await;
    assert!(query_of(&resp).contains_key("code"), "still signed in");

    // The form's answer with a wrong CSRF token is refused; without one it is an app's
    // logout request (POST is allowed, RP-Initiated Logout §2) and asks again; with
    // the right one, signed out.
    let form = hidden_fields(&html);
    let forged: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| match k.as_str() {
            "csrf" => (k.clone(), "x".repeat(43)),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert_eq!(b.post("/end_session", &forged).await.status(), 403);
    let unsigned: Vec<(String, String)> =
        form.iter().filter(|(k, _)| k != "csrf").cloned().collect();
    let resp = b.post("/end_session", &unsigned).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Sign out?"));
    let resp = b.authorize("spa", &[("prompt", "none")]).await;
    assert!(query_of(&resp).contains_key("code"), "still signed in");
    let resp = b.post("/end_session", &form).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "https://app.example/bye?state=xyz"
    );
    let resp = b.authorize("spa", &[("prompt", "none")]).await;
    assert_eq!(query_of(&resp)["error"], "login_required");
}

#[tokio::test]
async fn end_session_with_the_signed_in_users_id_token_signs_out_at_once() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    app.user("bob", "another horse battery", &[]).await;
    // Bob's ID token, from another browser.
    let mut other = Browser::new(&app);
    let tokens = other.tokens("spa", "bob", "another horse battery").await;
    let bobs = tokens["id_token"].as_str().unwrap().to_string();

    let mut b = Browser::new(&app);
    let tokens = b.tokens("spa", "alice", "correct horse battery").await;
    let alices = tokens["id_token"].as_str().unwrap().to_string();
    // A hint that is not the signed-in user's, or not one tessera signed, asks first.
    let mut tampered = alices.clone();
    tampered.pop();
    tampered.push(if alices.ends_with('A') { 'B' } else { 'A' });
    for hint in [&bobs, &tampered] {
        let page = b.get(&format!("/end_session?id_token_hint={hint}")).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Sign out?"));
    }
    let resp = b.authorize("spa", &[("prompt", "none")]).await;
    assert!(query_of(&resp).contains_key("code"), "still signed in");
    // Alice's own: signed out at once, to the app's registered address.
    let resp = b
        .get(&format!(
            "/end_session?id_token_hint={alices}&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye"
        ))
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "https://app.example/bye");
    let resp = b.authorize("spa", &[("prompt", "none")]).await;
    assert_eq!(query_of(&resp)["error"], "login_required");
}

#[tokio::test]
async fn cors_is_per_registered_origin_and_public_for_discovery() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    let preflight = |path: &'static str, origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    for path in ["/token", "/revoke", "/userinfo", "/events"] {
        let ok = preflight(path, ORIGIN).await.unwrap();
        assert_eq!(ok.status(), 204, "{path}");
        assert_eq!(ok.headers()["access-control-allow-origin"], ORIGIN);
        assert!(
            ok.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("Authorization")
        );
        assert!(ok.headers()["vary"].to_str().unwrap().contains("Origin"));
        assert!(
            ok.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
        let bad = preflight(path, "https://evil.example").await.unwrap();
        assert_eq!(bad.status(), 403, "{path}");
        assert!(bad.headers().get("access-control-allow-origin").is_none());
    }
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        let resp = app
            .http
            .get(app.url(path))
            .header("origin", "https://anyone.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["access-control-allow-origin"], "*", "{path}");
    }
}

#[tokio::test]
async fn the_metadata_describes_the_code_flow() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc = app.get_json(path).await;
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/authorize", app.addr)
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            doc["end_session_endpoint"],
            format!("{}/end_session", app.addr)
        );
        assert_eq!(
            doc["subject_types_supported"],
            serde_json::json!(["public"])
        );
        assert!(
            doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "authorization_code")
        );
        assert!(
            doc["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "openid")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_registers_a_browser_app() {
    let app = TestApp::spawn().await;
    let (code, _, err) = app.cli(
        &[
            "client",
            "add",
            "web",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://web.example/cb",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--origin",
            "https://other.example",
            "--third-party",
            "--post-logout-redirect-uri",
            "https://web.example/",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let c = app
        .core
        .clients
        .get(&app.core.db, "web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.redirect_uris,
        vec!["https://web.example/cb", "http://127.0.0.1/cb"]
    );
    assert_eq!(
        c.origins,
        vec![
            "https://other.example",
            "https://web.example",
            "http://127.0.0.1"
        ]
    );
    assert!(
        c.third_party
            && c.allows("refresh_token".parse().unwrap())
            && c.scopes.contains(&"openid".to_string())
    );
    let (code, _, err) = app.cli(
        &[
            "client",
            "add",
            "bad",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "http://web.example/cb",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("https"), "{err}");
}
