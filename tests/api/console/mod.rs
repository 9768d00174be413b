//! The web console (`/console`) over HTTP, as a browser would drive it (cookies by hand):
//! sign-in through tessera's own code flow, the live admin check, CSRF and the same-origin
//! check on every form, and the feed's reach. In Chromium: tests/api/browser/console.rs.

mod clients;
mod reach;
mod signin;

use reqwest::Response;

use crate::helpers::*;
use crate::oauth::code_flow::{Browser, hidden_fields};

/// The path and query of a redirect's `Location` (absolute or not).
pub(crate) fn location(resp: &Response) -> String {
    let loc = resp.headers()["location"].to_str().unwrap();
    match url::Url::parse(loc) {
        Ok(u) => format!("{}?{}", u.path(), u.query().unwrap_or("")),
        Err(_) => loc.to_string(),
    }
}

/// Signs `username` in to the console through the login page; returns the CSRF token of
/// the console's forms, read from the users page.
pub(crate) async fn sign_in(b: &mut Browser<'_>, username: &str, password: &str) -> Response {
    let to_login = b.get("/console/users").await;
    assert_eq!(to_login.status(), 303);
    assert_eq!(location(&to_login), "/console/login");
    let to_authorize = b.get("/console/login").await;
    assert_eq!(to_authorize.status(), 303);
    let authorize = location(&to_authorize);
    assert!(authorize.starts_with("/authorize?"), "{authorize}");
    let page = b.get(&authorize).await.text().await.unwrap();
    let back = b.submit_login(&page, username, password).await;
    assert_eq!(
        back.status(),
        303,
        "the login form answers with the callback"
    );
    let callback = location(&back);
    assert!(callback.starts_with("/console/callback?"), "{callback}");
    let landed = b.get(&callback).await;
    assert_eq!(landed.status(), 303);
    assert_eq!(location(&landed), "/console/users");
    b.get("/console/users").await
}

/// Creates admin `root` and signs them in; returns the CSRF token of their forms.
pub(crate) async fn admin_browser(b: &mut Browser<'_>) -> String {
    b.app.user("root", "root password 1", &["admin"]).await;
    let page = sign_in(b, "root", "root password 1").await;
    assert_eq!(page.status(), 200);
    csrf_of(&page.text().await.unwrap())
}

/// The CSRF token of a console page's forms.
pub(crate) fn csrf_of(page: &str) -> String {
    hidden_fields(page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .expect("a form with a CSRF token")
        .1
}

/// Posts a console form with `headers` (name, value) added.
pub(crate) async fn post_with(
    b: &mut Browser<'_>,
    path: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Response {
    let cookie = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut req = b
        .app
        .http
        .post(b.app.url(path))
        .header("cookie", cookie)
        .form(form);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// A same-origin browser's headers on a console form.
pub(crate) fn same_origin(app: &TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("origin", app.addr.clone()),
        ("sec-fetch-site", "same-origin".into()),
    ]
}
