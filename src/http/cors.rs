//! CORS (Fetch Standard): browsers on a registered app's origin may call
//! `/token`, `/revoke`, `/userinfo` and `/events` for that app; the JWKS and the
//! metadata are public. Tokens travel in headers, never cookies, so no response
//! allows credentials, and none of the credentialed paths ever answers `*`.
//!
//! A preflight names no client: it passes when some client registered the origin.
//! The actual request then decides: the handler refuses it ([`refused_form`],
//! [`refused_bearer`]) unless the authenticated client (`/token`, `/revoke`) or the
//! token's client (`/userinfo`, `/events`) registered the origin, before doing
//! anything, since a simple request (a form POST) reaches the server without a
//! preflight. A refused response carries no CORS headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::HttpError;
use super::form::FormError;
use crate::domain::Core;
use crate::domain::clients::Client;
use crate::error::OAuthError;
use crate::metrics::Metrics;

/// Paths a registered origin may call.
const PER_CLIENT: &[&str] = &["/token", "/revoke", "/userinfo", "/events"];
/// Paths anyone may read.
const PUBLIC: &[&str] = &[
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// The methods a CORS path serves (besides OPTIONS).
fn methods_of(path: &str) -> &'static str {
    match path {
        "/token" | "/revoke" => "POST",
        "/userinfo" => "GET, POST",
        _ => "GET",
    }
}

const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, Last-Event-ID";
const EXPOSE_HEADERS: &str = "WWW-Authenticate, Retry-After";

pub(super) async fn cors(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let public = PUBLIC.contains(&path);
    if !public && !PER_CLIENT.contains(&path) {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS;
    let allowed = match (&origin, public) {
        (_, true) => true,
        (None, false) => false,
        (Some(o), false) => match o.to_str() {
            Ok(o) => match core.clients.origin_registered(o).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "CORS origin lookup");
                    false
                }
            },
            Err(_) => false,
        },
    };
    let mut resp = if preflight {
        if origin.is_some() && !allowed {
            HttpError::new(
                StatusCode::FORBIDDEN,
                "invalid_request",
                "origin not allowed",
            )
            .into_response()
        } else {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let methods = methods_of(path);
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_str(&format!("{methods}, OPTIONS")).expect("ascii"),
            );
            if origin.is_some() {
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(methods),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOW_HEADERS),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
            }
            r
        }
    } else {
        next.run(req).await
    };
    let refused = resp.extensions().get::<Refused>().is_some();
    let h = resp.headers_mut();
    if public {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        return resp;
    }
    allow_origin(h, origin.filter(|_| allowed && !refused));
    resp
}

/// Marks a response to an origin its client did not register: no CORS headers.
#[derive(Clone, Copy)]
struct Refused;

/// Whether the request is not a cross-origin one, or comes from an origin `client` registered.
fn registered_by(headers: &HeaderMap, client: Option<&Client>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    client.is_some_and(|c| c.origins.iter().any(|o| o.as_bytes() == origin.as_bytes()))
}

/// `/token`, `/revoke`: the refusal when the authenticated client did not register the
/// request's `Origin`, before the grant is looked at, so a page elsewhere cannot spend a
/// user's sign-in attempts through its visitors' browsers (a form POST needs no
/// preflight). `unauthorized_client` (RFC 6749 §5.2), not `invalid_client`: the client
/// did authenticate, it is just not allowed from there.
pub(super) fn refused_form(
    metrics: &Metrics,
    headers: &HeaderMap,
    client: &Client,
    endpoint: &str,
) -> Option<Response> {
    if registered_by(headers, Some(client)) {
        return None;
    }
    let e = OAuthError::UnauthorizedClient("this client has not registered the request's origin");
    Some(refuse(
        FormError::from(e)
            .counted(metrics, endpoint)
            .into_response(),
    ))
}

/// `/userinfo`, `/events`: a 403 when the token's client did not register the request's
/// `Origin` (or is gone).
pub(super) fn refused_bearer(headers: &HeaderMap, client: Option<&Client>) -> Option<Response> {
    if registered_by(headers, client) {
        return None;
    }
    let e = HttpError::new(
        StatusCode::FORBIDDEN,
        "invalid_request",
        "the token's client has not registered the request's origin",
    );
    Some(refuse(e.into_response()))
}

fn refuse(mut resp: Response) -> Response {
    resp.extensions_mut().insert(Refused);
    resp
}

fn allow_origin(h: &mut HeaderMap, origin: Option<HeaderValue>) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
}
