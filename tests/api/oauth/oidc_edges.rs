//! The edges of the code flow that strict OpenID clients and attackers probe: prompts
//! across the login form, switching users, POST at the authorization and logout
//! endpoints, request objects, discovery.

use serde_json::{Value, json};
use tessera::domain::clients::NewClient;

use crate::helpers::*;
use crate::oauth::code_flow::{APP, Browser, VERIFIER, exchange, hidden_fields, query_of, spa};
use crate::sql;

const BYE: &str = "https://app.example/bye";

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The authorization request `Browser::authorize` sends, as form fields, `extra` overriding.
fn authorization_form(client: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let challenge = tessera::crypto::b64(&tessera::crypto::sha256(VERIFIER.as_bytes()));
    let mut form: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", APP),
        ("scope", "openid"),
        ("state", "s t&ate"),
        ("code_challenge_method", "S256"),
        ("code_challenge", challenge.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        form.retain(|(f, _)| f != k);
        form.push((k.to_string(), v.to_string()));
    }
    form
}

/// Whether the browser's cookie still gets a code without asking anything.
async fn gets_a_code(b: &mut Browser<'_>, client: &str) -> bool {
    let resp = b.authorize(client, &[("prompt", "none")]).await;
    assert_eq!(resp.status(), 303);
    query_of(&resp).contains_key("code")
}

/// `prompt=login` in a browser that is signed in, and the form submitted.
async fn sign_in_again(b: &mut Browser<'_>, username: &str, password: &str) -> reqwest::Response {
    let resp = b.authorize("spa", &[("prompt", "login")]).await;
    let page = resp.text().await.unwrap();
    b.submit_login(&page, username, password).await
}

#[tokio::test]
async fn prompt_consent_and_max_age_survive_the_login_form() {
    let app = TestApp::spawn().await;
    spa(&app, "partner", true).await;
    app.user("alice", "correct horse battery", &[]).await;
    // Consent given once, and remembered.
    let mut first = Browser::new(&app);
    let page = first.authorize("partner", &[]).await.text().await.unwrap();
    let consent = first
        .submit_login(&page, "alice", "correct horse battery")
        .await
        .text()
        .await
        .unwrap();
    let mut form = hidden_fields(&consent);
    form.push(("decision".into(), "allow".into()));
    assert_eq!(first.post("/consent", &form).await.status(), 303);
    assert!(gets_a_code(&mut first, "partner").await);

    // Another browser, not signed in, asks for consent again: the login form comes
    // first and must not lose the prompt.
    let mut b = Browser::new(&app);
    let page = b
        .authorize("partner", &[("prompt", "consent"), ("max_age", "600")])
        .await
        .text()
        .await
        .unwrap();
    let carried = hidden_fields(&page);
    assert!(
        carried.contains(&("prompt".into(), "consent".into()))
            && carried.contains(&("max_age".into(), "600".into())),
        "{carried:?}"
    );
    let resp = b
        .submit_login(&page, "alice", "correct horse battery")
        .await;
    assert_eq!(resp.status(), 200, "the consent page, not a code");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Allow"), "{html}");
    let mut form = hidden_fields(&html);
    form.push(("decision".into(), "allow".into()));
    let resp = b.post("/consent", &form).await;
    assert!(query_of(&resp).contains_key("code"));
}

#[tokio::test]
async fn signing_in_again_ends_the_browsers_previous_session() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let bob = app.user("bob", "another horse battery", &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("spa", "alice", "correct horse battery").await;
    let mut alices = Browser::new(&app);
    alices.cookies = b.cookies.clone();

    // prompt=login, and bob signs in in the same browser.
    let resp = sign_in_again(&mut b, "bob", "another horse battery").await;
    let tokens: Value = exchange(&app, "spa", &query_of(&resp)["code"], VERIFIER, APP)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], bob);
    assert!(
        !gets_a_code(&mut alices, "spa").await,
        "alice's cookie is dead"
    );
    assert!(gets_a_code(&mut b, "spa").await);

    // bob again: one session, under a new cookie.
    let mut bobs = Browser::new(&app);
    bobs.cookies = b.cookies.clone();
    let resp = sign_in_again(&mut b, "bob", "another horse battery").await;
    assert_eq!(resp.status(), 303);
    assert!(!gets_a_code(&mut bobs, "spa").await);
    assert!(gets_a_code(&mut b, "spa").await);
    let (live,): (i64,) = sql::one(
        app.core.db.writer(),
        "SELECT COUNT(*) FROM browser_sessions WHERE user_id = $1 AND revoked_at IS NULL",
        &[(&bob).into()],
    )
    .await;
    assert_eq!(live, 1);
}

#[tokio::test]
async fn the_authorization_endpoint_accepts_a_form_post() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let resp = b.post("/authorize", &authorization_form("spa", &[])).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"action="/login""#), "{page}");
    let resp = b
        .submit_login(&page, "alice", "correct horse battery")
        .await;
    let q = query_of(&resp);
    assert_eq!(q["state"], "s t&ate");
    assert_eq!(
        exchange(&app, "spa", &q["code"], VERIFIER, APP)
            .await
            .status(),
        200
    );
    // Signed in: a code at once, as with GET; errors go back to the app as with GET.
    let resp = b
        .post(
            "/authorize",
            &authorization_form("spa", &[("prompt", "none")]),
        )
        .await;
    assert!(query_of(&resp).contains_key("code"));
    let resp = b
        .post(
            "/authorize",
            &authorization_form("spa", &[("response_type", "token")]),
        )
        .await;
    assert_eq!(query_of(&resp)["error"], "unsupported_response_type");
    let mut nobody = Browser::new(&app);
    let resp = nobody
        .post(
            "/authorize",
            &authorization_form("spa", &[("prompt", "none")]),
        )
        .await;
    assert_eq!(query_of(&resp)["error"], "login_required");
    // Not a form: an error page, not a 5xx.
    let resp = app
        .http
        .post(app.url("/authorize"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn end_session_accepts_an_apps_form_post_with_an_id_token_hint() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let tokens = b.tokens("spa", "alice", "correct horse battery").await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let logout = form(&[
        ("id_token_hint", hint.as_str()),
        ("client_id", "spa"),
        ("post_logout_redirect_uri", BYE),
        ("state", "xyz"),
    ]);
    // Same site (the session cookie comes along): signed out at once.
    let resp = b.post("/end_session", &logout).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], format!("{BYE}?state=xyz"));
    assert!(!gets_a_code(&mut b, "spa").await);

    // From the app's own site the browser leaves the SameSite=Lax cookie behind: the
    // request goes on as a GET, which carries it.
    b.sign_in("spa", "alice", "correct horse battery").await;
    let resp = app
        .http
        .post(app.url("/end_session"))
        .form(&logout)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let path = location
        .strip_prefix(&app.addr)
        .expect("back to tessera")
        .to_string();
    assert!(path.starts_with("/end_session?"), "{path}");
    assert!(gets_a_code(&mut b, "spa").await, "nothing ended yet");
    let resp = b.get(&path).await;
    assert_eq!(resp.headers()["location"], format!("{BYE}?state=xyz"));
    assert!(!gets_a_code(&mut b, "spa").await);
}

#[tokio::test]
async fn end_session_redirects_nowhere_for_a_client_the_hint_was_not_issued_to() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    spa(&app, "other", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    let tokens = b.tokens("spa", "alice", "correct horse battery").await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let bye = "post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye";
    // `other` registered the same address, but the hint was issued to `spa`.
    let resp = b
        .get(&format!(
            "/end_session?id_token_hint={hint}&client_id=other&{bye}"
        ))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    let form: Vec<(String, String)> = vec![
        ("id_token_hint".into(), hint.clone()),
        ("client_id".into(), "other".into()),
    ];
    let resp = b.post("/end_session", &form).await;
    assert_eq!(resp.status(), 400);
    assert!(gets_a_code(&mut b, "spa").await, "still signed in");

    // A hint that does not verify forfeits the redirect: asked, then signed out here.
    let mut tampered = hint.clone();
    tampered.pop();
    tampered.push(if hint.ends_with('A') { 'B' } else { 'A' });
    let page = b
        .get(&format!(
            "/end_session?id_token_hint={tampered}&client_id=spa&{bye}"
        ))
        .await;
    assert_eq!(page.status(), 200);
    let form = hidden_fields(&page.text().await.unwrap());
    assert!(
        form.iter().all(|(k, _)| k != "post_logout_redirect_uri"),
        "{form:?}"
    );
    let resp = b.post("/end_session", &form).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("location").is_none());
    assert!(!gets_a_code(&mut b, "spa").await);

    // The hint's own client: signed out and redirected.
    b.sign_in("spa", "alice", "correct horse battery").await;
    let resp = b
        .get(&format!(
            "/end_session?id_token_hint={hint}&client_id=spa&{bye}"
        ))
        .await;
    assert_eq!(resp.headers()["location"], BYE);
}

#[tokio::test]
async fn request_objects_are_refused_back_at_the_app() {
    let app = TestApp::spawn().await;
    spa(&app, "spa", false).await;
    app.user("alice", "correct horse battery", &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("spa", "alice", "correct horse battery").await;
    for (param, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let value = if param == "request" {
            "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."
        } else {
            "https://app.example/request.jwt"
        };
        let resp = b.authorize("spa", &[(param, value)]).await;
        assert_eq!(resp.status(), 303, "{param}");
        let q = query_of(&resp);
        assert_eq!(q["error"], error);
        assert_eq!(q["state"], "s t&ate");
        assert_eq!(q["iss"], app.addr);
        assert!(!q.contains_key("code"));
    }
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["request_parameter_supported"], false);
    assert_eq!(doc["request_uri_parameter_supported"], false);
}

#[tokio::test]
async fn scopes_supported_lists_the_servers_scopes_not_the_clients() {
    let app = TestApp::spawn().await;
    app.client_with(NewClient {
        id: "reports".into(),
        public: false,
        grant_types: vec!["client_credentials".parse().unwrap()],
        scopes: vec!["reports:read".into()],
        ..Default::default()
    })
    .await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc = app.get_json(path).await;
        assert_eq!(
            doc["scopes_supported"],
            json!(["openid", "profile", "offline_access", "roles", "events"]),
            "{path}"
        );
    }
}
