//! tessera's browser cookies: the session cookie and the double-submit CSRF token.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::request::{Refusal, internal};
use crate::crypto::{self, ct_eq};
use crate::domain::browser::BrowserSession;
use crate::domain::signin::SignIn;
use crate::http::form::Params;

/// The names of tessera's cookies: `__Host-` prefixed and `Secure` under an https issuer.
pub(in crate::http) struct Cookies {
    pub(in crate::http) session: &'static str,
    pub(in crate::http) csrf: &'static str,
    /// The device cookie: this browser signed in as a user before (see `domain::throttle`).
    pub(in crate::http) device: &'static str,
    pub(in crate::http) attributes: &'static str,
}

/// The live browser session the request's session cookie names, if any.
pub(in crate::http) async fn signed_in(
    signin: &SignIn,
    headers: &HeaderMap,
) -> Result<Option<BrowserSession>, Refusal> {
    match read_cookie(headers, cookies(signin).session) {
        Some(token) => signin
            .browser
            .browser_session(token)
            .await
            .map_err(internal),
        None => Ok(None),
    }
}

pub(in crate::http) fn cookies(signin: &SignIn) -> Cookies {
    if signin.cfg.issuer.starts_with("https://") {
        Cookies {
            session: "__Host-tessera_session",
            csrf: "__Host-tessera_csrf",
            device: "__Host-tessera_device",
            attributes: "; Path=/; HttpOnly; Secure",
        }
    } else {
        Cookies {
            session: "tessera_session",
            csrf: "tessera_csrf",
            device: "tessera_device",
            attributes: "; Path=/; HttpOnly",
        }
    }
}

pub(in crate::http) fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

pub(in crate::http) fn set_cookie(extra: &mut HeaderMap, cookie: String) {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        extra.append(header::SET_COOKIE, v);
    }
}

/// The CSRF token of this browser (double-submit cookie), set if it has none.
pub(in crate::http) fn csrf_token(
    signin: &SignIn,
    headers: &HeaderMap,
    extra: &mut HeaderMap,
) -> String {
    let c = cookies(signin);
    if let Some(t) = read_cookie(headers, c.csrf).filter(|t| t.len() == 43) {
        return t.to_string();
    }
    let token = crypto::random_token();
    set_cookie(
        extra,
        format!("{}={token}{}; SameSite=Strict", c.csrf, c.attributes),
    );
    token
}

pub(in crate::http) fn check_csrf(
    signin: &SignIn,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), Refusal> {
    let cookie = read_cookie(headers, cookies(signin).csrf);
    match (cookie, params.get("csrf")) {
        (Some(c), Some(p)) if ct_eq(c.as_bytes(), p.as_bytes()) => Ok(()),
        _ => Err(Refusal::Page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the app and sign in again.".into(),
        )),
    }
}

/// A POST from a page on another origin is refused before anything is spent.
/// Browsers send `Origin` with every cross-origin POST; requests without it
/// (not from a browser page) are left to the CSRF token. The CSRF token alone
/// already stops a cross-site form (the page cannot read the token); this also
/// covers same-site pages on another origin that could plant the cookie (no
/// `__Host-` prefix under an http issuer).
pub(in crate::http) fn check_origin(signin: &SignIn, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    // As a browser serialises it: lowercase host, no default port, no path.
    let own = url::Url::parse(&signin.cfg.issuer).map(|u| u.origin().ascii_serialization());
    if own.is_ok_and(|own| origin.as_bytes() == own.as_bytes()) {
        return Ok(());
    }
    Err(Refusal::Page(
        StatusCode::FORBIDDEN,
        "This form was sent from another site",
        "Sign in from the app you were using.".into(),
    ))
}

/// Sets the device cookie naming `username` (a successful sign-in).
pub(in crate::http) fn set_device_cookie(signin: &SignIn, extra: &mut HeaderMap, username: &str) {
    let c = cookies(signin);
    let value = signin.device_cookie(username);
    let max_age = crate::domain::throttle::DEVICE_TTL_SECS;
    set_cookie(
        extra,
        format!(
            "{}={value}{}; SameSite=Strict; Max-Age={max_age}",
            c.device, c.attributes
        ),
    );
}
