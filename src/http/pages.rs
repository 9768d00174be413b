//! The HTML pages of the code flow (login, consent, errors, signed out), rendered
//! on the server with maud. No inline scripts and no inline styles: one stylesheet from
//! `/assets/tessera.css` and, where passkeys are offered, `/assets/passkeys.js`, under a
//! strict `Content-Security-Policy`.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use std::sync::Arc;

use crate::domain::{Core, scopes};

const STYLESHEET: &str = include_str!("assets/tessera.css");
/// The passkey ceremonies' page script (no inline script: the CSP allows only `'self'`).
const PASSKEYS_JS: &str = include_str!("assets/passkeys.js");
/// How a page loads it (what [`passkey_form`] writes; the CSP allows scripts only then).
const PASSKEYS_SCRIPT_TAG: &str = r#"<script src="/assets/passkeys.js""#;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/assets/tessera.css", get(stylesheet))
        .route("/assets/passkeys.js", get(passkeys_js))
}

async fn passkeys_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PASSKEYS_JS,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The authorization request, carried through the login and consent forms.
pub(super) type Hidden<'a> = &'a [(&'static str, String)];

pub(super) fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · tessera" }
                link rel="stylesheet" href="/assets/tessera.css";
            }
            body {
                main {
                    div.brand { span.mark {} "tessera" }
                    (content)
                }
                footer { "Signed in by tessera, your organisation's identity server." }
            }
        }
    }
}

pub(super) fn hidden_fields(hidden: Hidden<'_>, csrf: &str) -> Markup {
    html! {
        @for (name, value) in hidden {
            input type="hidden" name=(name) value=(value);
        }
        input type="hidden" name="csrf" value=(csrf);
    }
}

/// The login page; `passkey`: where a passkey's answer is posted, when passkeys are offered.
pub(super) fn login(
    app: &str,
    username: &str,
    error: Option<&str>,
    hidden: Hidden<'_>,
    csrf: &str,
    action: &str,
    passkey: Option<&str>,
) -> Markup {
    let autocomplete = match passkey {
        Some(_) => "username webauthn",
        None => "username",
    };
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p.lead { "to continue to " span.app { (app) } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action=(action) {
                (hidden_fields(hidden, csrf))
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username)
                    autocomplete=(autocomplete) autocapitalize="none" spellcheck="false" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            @if let Some(passkey) = passkey {
                (passkey_form(passkey, "Sign in with a passkey", hidden, csrf))
            }
        },
    )
}

/// A form that signs in with a passkey (the page script fills `credential` and posts it);
/// its button shows only where the browser can use passkeys.
pub(super) fn passkey_form(action: &str, label: &str, hidden: Hidden<'_>, csrf: &str) -> Markup {
    html! {
        form.passkey method="post" action=(action) data-passkey="sign-in" data-options="/passkeys/options" {
            (hidden_fields(hidden, csrf))
            input type="hidden" name="credential" value="";
            p.error role="alert" hidden data-passkey-error {}
            button.secondary type="button" hidden data-passkey-start { (label) }
        }
        script src="/assets/passkeys.js" defer {}
    }
}

/// The second step: a code from an authenticator app, or a recovery code; or a passkey,
/// posted to `passkey` when the user has one.
pub(super) fn second_factor(
    app: &str,
    error: Option<&str>,
    hidden: Hidden<'_>,
    csrf: &str,
    action: &str,
    passkey: Option<&str>,
) -> Markup {
    layout(
        "Second step",
        html! {
            h1 { "Confirm it is you" }
            p.lead { "Enter the code your authenticator app shows, or one of your recovery codes, to continue to " span.app { (app) } "." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action=(action) {
                (hidden_fields(hidden, csrf))
                label for="code" { "Code" }
                input #code type="text" name="code" autocomplete="one-time-code"
                    autocapitalize="none" spellcheck="false" maxlength="64" required autofocus;
                button type="submit" { "Continue" }
            }
            @if let Some(passkey) = passkey {
                (passkey_form(passkey, "Use a passkey", hidden, csrf))
            }
        },
    )
}

/// A second factor is required but the user has none yet.
pub(super) fn no_second_factor(app: &str) -> Markup {
    layout(
        "Second step",
        html! {
            h1 { "Set up a second factor" }
            p.lead { span.app { (app) } " requires a second factor, and your account has none yet." }
            p { "Add a passkey or an authenticator app on " a href="/account" { "your account page" } ", then go back to the app and sign in again." }
        },
    )
}

pub(super) fn consent(
    app: &str,
    username: &str,
    scopes: &[&str],
    hidden: Hidden<'_>,
    csrf: &str,
) -> Markup {
    layout(
        "Allow access",
        html! {
            h1 { "Allow " (app) "?" }
            p.lead { span.app { (app) } " asks to use your account " strong { (username) } " with these permissions:" }
            ul.scopes {
                @for s in scopes {
                    li { code { (s) } " — " (scope_label(s)) }
                }
            }
            form method="post" action="/consent" {
                (hidden_fields(hidden, csrf))
                button type="submit" name="decision" value="allow" { "Allow" }
                button.secondary type="submit" name="decision" value="deny" { "Deny" }
            }
        },
    )
}

pub(super) fn confirm_sign_out(hidden: Hidden<'_>, csrf: &str) -> Markup {
    layout(
        "Sign out",
        html! {
            h1 { "Sign out?" }
            p.lead { "An app asked to sign you out of tessera." }
            form method="post" action="/end_session" {
                (hidden_fields(hidden, csrf))
                button type="submit" { "Sign out" }
            }
        },
    )
}

fn scope_label(scope: &str) -> &'static str {
    match scope {
        scopes::OPENID => "know who you are",
        scopes::PROFILE => "see your username",
        scopes::ROLES => "see your roles",
        scopes::EVENTS => "follow your account's security events (sign-ins ended, role changes)",
        scopes::OFFLINE_ACCESS => "stay signed in when you are not using it",
        _ => "a permission of this app",
    }
}

pub(super) fn message(title: &str, text: &str) -> Markup {
    layout(title, html! { h1 { (title) } p.lead { (text) } })
}

/// A page with the security headers every page carries. `form_action` lists the
/// origins a form on it may post to or be redirected to after posting (Chromium
/// applies `form-action` to the redirect after a POST too).
pub(super) fn respond(
    status: StatusCode,
    markup: Markup,
    form_action: Option<&str>,
    extra: HeaderMap,
) -> Response {
    let form = match form_action {
        Some(origin) => format!("'self' {origin}"),
        None => "'none'".into(),
    };
    respond_with(status, markup, &form, extra)
}

/// A page whose forms post to tessera itself (the account page).
pub(super) fn respond_own(status: StatusCode, markup: Markup, extra: HeaderMap) -> Response {
    respond_with(status, markup, "'self'", extra)
}

fn respond_with(status: StatusCode, markup: Markup, form: &str, extra: HeaderMap) -> Response {
    let body = markup.into_string();
    // Only a page that loads the passkeys script may run a script, and fetch its options.
    let script = match body.contains(PASSKEYS_SCRIPT_TAG) {
        true => "script-src 'self'; connect-src 'self'; ",
        false => "",
    };
    let csp = format!(
        "default-src 'none'; {script}style-src 'self'; img-src 'self'; form-action {form}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    security(h);
    h.extend(extra);
    resp
}

/// What pages and the redirects that leave them share.
pub(super) fn security(h: &mut HeaderMap) {
    // Nothing leaves for another origin; `same-origin` rather than `no-referrer` so that
    // a form posted from our own page carries our `Origin` (under `no-referrer`,
    // browsers send `Origin: null`) and POST /login can refuse every other one.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
