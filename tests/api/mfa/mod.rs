//! Second factors (issue 25): TOTP enrollment on `/account`, the second sign-in step,
//! `amr`/`acr` in tokens, recovery codes, the lifecycle; codes computed by pyotp, an
//! independent TOTP implementation, and tokens checked with PyJWT.

mod account;
mod lifecycle;
mod passkeys;
mod signin;

use std::process::Command;

use tessera::domain::clients::NewClient;

use crate::helpers::*;
use crate::oauth::code_flow::{APP, Browser, hidden_fields};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// pyotp's code for the base32 `secret` at `unix` (seconds).
pub(crate) fn pyotp_code(secret: &str, unix: i64) -> String {
    let python = crate::keys::jwks_pyjwt::pyjwt_python();
    let out = Command::new(python)
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &unix.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A public code-flow client that requires a second factor and may also try the
/// password grant.
pub(crate) async fn mfa_client(app: &TestApp, id: &str) {
    app.client_with(NewClient {
        id: id.into(),
        public: true,
        grant_types: vec![
            "authorization_code".parse().unwrap(),
            "password".parse().unwrap(),
        ],
        redirect_uris: vec![APP.into()],
        scopes: vec!["openid".into()],
        require_mfa: true,
        ..Default::default()
    })
    .await;
}

/// The CSRF token of a page's forms.
pub(crate) fn csrf_of(page: &str) -> String {
    hidden_fields(page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .expect("a csrf field")
        .1
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Signs in on the account page with a password.
pub(crate) async fn account_sign_in(b: &mut Browser<'_>, username: &str) {
    let page = b.get("/account").await.text().await.unwrap();
    assert!(page.contains(r#"action="/account/login""#), "{page}");
    let csrf = csrf_of(&page);
    let resp = b
        .post(
            "/account/login",
            &form(&[
                ("csrf", &csrf),
                ("username", username),
                ("password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/account");
}

/// The enrollment page's `otpauth://` URI (as text) and the factor id.
pub(crate) async fn begin_totp(b: &mut Browser<'_>) -> (String, String, String) {
    let page = b.get("/account").await.text().await.unwrap();
    let resp = b
        .post("/account/totp", &form(&[("csrf", &csrf_of(&page))]))
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    let uri = page
        .split("<code class=\"uri\">")
        .nth(1)
        .and_then(|r| r.split("</code>").next())
        .expect("the otpauth URI as text")
        .replace("&amp;", "&");
    let factor = hidden_fields(&page)
        .into_iter()
        .find(|(k, _)| k == "factor")
        .unwrap()
        .1;
    (uri, factor, page)
}

/// The `secret` parameter of an `otpauth://` URI.
pub(crate) fn secret_of(uri: &str) -> String {
    let url = url::Url::parse(uri).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .to_string()
}

/// Confirms the enrollment with `code`; the response.
pub(crate) async fn confirm_totp(
    b: &mut Browser<'_>,
    page: &str,
    factor: &str,
    code: &str,
) -> reqwest::Response {
    let f = form(&[
        ("csrf", &csrf_of(page)),
        ("factor", factor),
        ("name", "Phone"),
        ("code", code),
    ]);
    b.post("/account/totp/confirm", &f).await
}

/// Enrolls TOTP for `username` (signing in on the account page); returns the secret. The
/// first code is spent at the current step: move the clock a step before the next.
pub(crate) async fn enrolled(app: &TestApp, username: &str) -> String {
    let mut b = Browser::new(app);
    account_sign_in(&mut b, username).await;
    let (uri, factor, page) = begin_totp(&mut b).await;
    let secret = secret_of(&uri);
    let code = pyotp_code(&secret, app.core.clock.now());
    let resp = confirm_totp(&mut b, &page, &factor, &code).await;
    assert_eq!(resp.status(), 303);
    secret
}

/// Moves the app's clock to the next TOTP step.
pub(crate) fn next_step(app: &TestApp) {
    app.advance(std::time::Duration::from_secs(30));
}
