//! The HTTP surface. Handlers know HTTP; the domain does the work.

mod account;
mod addresses;
mod admin;
mod authorize;
pub mod bearer;
mod console;
mod cors;
pub mod error;
mod events;
pub mod form;
mod health;
mod introspect;
mod json;
mod listener;
mod ops;
mod pages;
mod revoke;
mod ssf;
mod state;
mod stream_conn;
mod token;
mod userinfo;
mod wellknown;

pub use listener::serve;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::domain::Core;
use crate::domain::signin::SignIn;

/// Every (method, path) the router serves, in OpenAPI path syntax. The contract
/// test checks it against `openapi.yaml` and against the live router.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/token"),
    ("POST", "/introspect"),
    ("POST", "/revoke"),
    ("GET", "/userinfo"),
    ("POST", "/userinfo"),
    ("GET", "/events"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("POST", "/login"),
    ("POST", "/login/mfa"),
    ("POST", "/login/passkey"),
    ("POST", "/passkeys/options"),
    ("GET", "/account"),
    ("POST", "/account/login"),
    ("POST", "/account/mfa"),
    ("POST", "/account/totp"),
    ("POST", "/account/totp/confirm"),
    ("POST", "/account/recovery-codes"),
    ("POST", "/account/factors/remove"),
    ("POST", "/account/passkeys/options"),
    ("POST", "/account/passkeys"),
    ("POST", "/account/login/passkey"),
    ("POST", "/consent"),
    ("GET", "/end_session"),
    ("POST", "/end_session"),
    ("GET", "/assets/tessera.css"),
    ("GET", "/assets/passkeys.js"),
    ("OPTIONS", "/token"),
    ("OPTIONS", "/revoke"),
    ("OPTIONS", "/userinfo"),
    ("OPTIONS", "/events"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{id}"),
    ("DELETE", "/admin/users/{id}"),
    ("POST", "/admin/users/{id}/enable"),
    ("PUT", "/admin/users/{id}/password"),
    ("GET", "/admin/sessions"),
    ("GET", "/admin/events"),
    ("PUT", "/admin/users/{id}/roles"),
    ("POST", "/admin/users/{id}/disable"),
    ("GET", "/admin/users/{id}/sessions"),
    ("DELETE", "/admin/sessions/{sid}"),
    ("DELETE", "/admin/users/{id}/consents/{client_id}"),
    ("DELETE", "/admin/users/{id}/factors"),
    ("POST", "/admin/clients"),
    ("GET", "/admin/clients"),
    ("GET", "/admin/clients/{id}"),
    ("PATCH", "/admin/clients/{id}"),
    ("DELETE", "/admin/clients/{id}"),
    ("POST", "/admin/clients/{id}/secret"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
    ("GET", "/admin/audit"),
    ("GET", "/.well-known/ssf-configuration"),
    ("POST", "/ssf/stream"),
    ("GET", "/ssf/stream"),
    ("PATCH", "/ssf/stream"),
    ("PUT", "/ssf/stream"),
    ("DELETE", "/ssf/stream"),
    ("GET", "/ssf/status"),
    ("POST", "/ssf/status"),
    ("POST", "/ssf/subjects/add"),
    ("POST", "/ssf/subjects/remove"),
    ("POST", "/ssf/verify"),
    ("POST", "/ssf/poll/{stream_id}"),
];

/// Every route of tessera; `main` and the tests both serve this.
pub fn router(core: Arc<Core>) -> Router {
    let timeout = core.cfg.request_timeout;
    Router::new()
        .merge(token::router())
        .merge(introspect::router())
        .merge(revoke::router())
        .merge(userinfo::router())
        .merge(admin::router())
        .merge(wellknown::router())
        .merge(health::router())
        .merge(authorize::router())
        .merge(account::router())
        .merge(console::router())
        .merge(pages::router())
        .merge(ssf::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // The feed bounds its own waits (long-poll at most `events::MAX_WAIT`; SSE is a stream).
        .merge(events::router())
        .merge(ssf::poll_router())
        .with_state(core.clone())
        // One layer for the three concerns every request crosses (header limits and
        // security headers, then the request id and metrics, then CORS): each layer of a
        // router costs every request a boxed service clone and a boxed future.
        .layer(middleware::from_fn_with_state(core, edge))
        .layer(CatchPanicLayer::new())
}

/// The client's address: the TCP peer, or what trusted proxies say of it in
/// `X-Forwarded-For` (see [`addresses::client_address`]).
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer
where
    SignIn: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(
            parts,
            &SignIn::from_ref(state).cfg.trusted_proxies,
        ))
    }
}

impl Peer {
    /// The request's client address, given the trusted proxies.
    pub(super) fn of(parts: &Parts, trusted: &[IpAddr]) -> Self {
        let direct = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Self(addresses::client_address(direct, &parts.headers, trusted))
    }
}

/// What every request goes through, outermost first: [`security_headers`], [`observe`],
/// then [`cors::cors`] in front of the routes.
async fn edge(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    security_headers(req, |req| observe(core, req, next)).await
}

/// A request id on every response and log line (the caller's `X-Request-Id` when
/// it is sane), and per-route latency in the metrics.
async fn observe(core: Arc<Core>, req: Request, next: Next) -> Response {
    // Measures latency (monotonic): not a reading of the clock the rules use.
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(crate::crypto::unique_id, str::to_string);
    let span = tracing::info_span!("request", id = %id, method = %req.method(), route = %route);
    let mut resp = cors::cors(State(core.clone()), req, next)
        .instrument(span.clone())
        .await;
    let status = resp.status().as_u16();
    core.metrics.observe(&route, status, started.elapsed());
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_us = started.elapsed().as_micros() as u64,
            "request done"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Request header limits (431 beyond): no legitimate OAuth request comes close.
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// `nosniff` everywhere, and nothing cached unless the handler said otherwise; headers
/// beyond the limits are refused before `inner` sees the request.
async fn security_headers<F: Future<Output = Response>>(
    req: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let mut resp = if size > MAX_HEADER_BYTES || req.headers().len() > MAX_HEADERS {
        error::HttpError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid_request",
            "request headers too large",
        )
        .into_response()
    } else {
        inner(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
