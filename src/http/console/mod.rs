//! `/console`: the operator's web console, server-rendered (maud) under a strict CSP, no
//! script, every action a form. It signs the operator in through tessera's own code flow
//! (signin.rs), checks the admin role live on every request ([`Console`]), and refuses a
//! form that lacks its session's CSRF token or comes from another origin ([`Console::form`]).
//! Every change goes through the domain services the admin API uses, as the signed-in admin.

mod audit;
mod client;
mod clients;
mod keys;
mod layout;
mod reach;
mod signin;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::form::{self, FORM_LIMIT, Params};
use super::pages;
use crate::domain::Core;
use crate::domain::console::{self, Operator};
use crate::domain::users::User;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .merge(signin::router())
        .merge(users::router())
        .merge(keys::router())
        .merge(clients::router())
        .merge(client::router())
        .merge(reach::router())
        .merge(audit::router())
}

/// The console's session cookie: `__Host-` prefixed and `Secure` under an https issuer.
fn cookie_name(core: &Core) -> &'static str {
    if https(core) {
        "__Host-tessera_console"
    } else {
        "tessera_console"
    }
}

fn https(core: &Core) -> bool {
    core.cfg.issuer.starts_with("https://")
}

/// A cookie's value in the request, if set and not empty.
fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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

/// `Set-Cookie` for a cookie of the console's (HttpOnly; Secure under https).
fn set_cookie(core: &Core, extra: &mut HeaderMap, name: &str, value: &str, rest: &str) {
    let secure = if https(core) { "; Secure" } else { "" };
    let cookie = format!("{name}={value}; HttpOnly{secure}; {rest}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        extra.append(header::SET_COOKIE, v);
    }
}

/// The signed-in administrator of a console request, checked live (see
/// [`console::operator`]). Signed out: a redirect to sign in; not an admin (now): 403.
pub(super) struct Console {
    /// The administrator as they are now.
    pub(super) user: User,
    /// The CSRF token every form of this session carries.
    pub(super) csrf: String,
}

impl FromRequestParts<Arc<Core>> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self, Response> {
        let Some(token) = read_cookie(&parts.headers, cookie_name(core)) else {
            return Err(see_other("/console/login"));
        };
        match console::operator(core, token).await {
            Ok(Operator::Admin { user, .. }) => Ok(Console {
                user,
                csrf: console::csrf_token(token),
            }),
            Ok(Operator::SignedOut) => Err(see_other("/console/login")),
            Ok(Operator::NotAdmin(user)) => Err(forbidden(&user, token)),
            Err(e) => Err(internal(&e)),
        }
    }
}

impl Console {
    /// A console form's POST: refused (403) when sent from another origin or without this
    /// session's CSRF token, before the session is even looked at; then the administrator,
    /// checked live, and the form's fields.
    pub(super) async fn form(core: &Arc<Core>, req: Request) -> Result<(Self, Params), Response> {
        let (mut parts, body) = req.into_parts();
        let params = checked_form(core, &parts.headers, body).await?;
        let console = Self::from_request_parts(&mut parts, core).await?;
        Ok((console, params))
    }
}

/// A console form's fields, once it is known to come from a console page: same origin, and
/// the CSRF token of the session its cookie names (403 otherwise).
async fn checked_form(core: &Core, headers: &HeaderMap, body: Body) -> Result<Params, Response> {
    if !same_origin(core, headers) {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "This form was sent from another site; the console refused it.",
        ));
    }
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| page_error(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large."))?;
    let params = form::parse(&bytes)
        .map_err(|_| page_error(StatusCode::BAD_REQUEST, "This form is malformed."))?;
    let token = read_cookie(headers, cookie_name(core)).unwrap_or("");
    if token.is_empty() || !console::csrf_matches(token, params.get("csrf").unwrap_or("")) {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "This form has expired or was not sent by the console. Reload the page and try again.",
        ));
    }
    Ok(params)
}

/// Whether a POST may be from a console page: a browser's cross-origin POST is not
/// (`Sec-Fetch-Site` when the browser sends it, else `Origin`). A request with neither (not
/// from a browser page) is left to the CSRF token.
fn same_origin(core: &Core, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() != b"same-origin")
    {
        return false;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => url::Url::parse(&core.cfg.issuer)
            .map(|u| u.origin().ascii_serialization())
            .is_ok_and(|own| origin.as_bytes() == own.as_bytes()),
    }
}

/// 303 to `to` (after a form, or to sign in).
pub(super) fn see_other(to: &str) -> Response {
    let mut h = HeaderMap::new();
    pages::security(&mut h);
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    (StatusCode::SEE_OTHER, h).into_response()
}

/// A console page: the house's security headers, forms posting to this origin only.
pub(super) fn respond(status: StatusCode, markup: Markup, extra: HeaderMap) -> Response {
    pages::respond(status, markup, Some("'self'"), extra)
}

/// An error page of the console, without its navigation (the caller may not be signed in).
pub(super) fn page_error(status: StatusCode, text: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "Cannot do that",
    };
    respond(status, layout::message(title, text), HeaderMap::new())
}

/// 403 for a signed-in user who is not (or no longer) an administrator.
fn forbidden(user: &User, token: &str) -> Response {
    respond(
        StatusCode::FORBIDDEN,
        layout::not_admin(&user.username, &console::csrf_token(token)),
        HeaderMap::new(),
    )
}

/// 500, the error logged in full, a fixed text shown.
pub(super) fn internal(e: &(dyn std::error::Error + 'static)) -> Response {
    tracing::error!(error = %crate::error_chain(e), "console");
    page_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The console could not do that; the server log says why.",
    )
}

/// A form's field, trimmed; empty counts as absent.
pub(super) fn field<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(str::trim).filter(|v| !v.is_empty())
}
