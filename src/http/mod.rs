//! The HTTP surface. Handlers know HTTP; the domain does the work.

mod addresses;
mod admin;
mod authorize;
pub mod bearer;
mod cors;
pub mod error;
mod events;
pub mod form;
mod health;
mod introspect;
mod json;
mod ops;
mod pages;
mod revoke;
mod state;
mod stream_conn;
mod token;
mod userinfo;
mod wellknown;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::domain::Core;

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
    ("POST", "/consent"),
    ("GET", "/end_session"),
    ("POST", "/end_session"),
    ("GET", "/assets/tessera.css"),
    ("OPTIONS", "/token"),
    ("OPTIONS", "/revoke"),
    ("OPTIONS", "/userinfo"),
    ("OPTIONS", "/events"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{id}"),
    ("PUT", "/admin/users/{id}/roles"),
    ("POST", "/admin/users/{id}/disable"),
    ("GET", "/admin/users/{id}/sessions"),
    ("DELETE", "/admin/sessions/{sid}"),
    ("DELETE", "/admin/users/{id}/consents/{client_id}"),
    ("POST", "/admin/clients"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
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
        .merge(pages::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // The feed bounds its own waits (long-poll at most `events::MAX_WAIT`; SSE is a stream).
        .merge(events::router())
        .with_state(core.clone())
        .layer(middleware::from_fn_with_state(core.clone(), cors::cors))
        .layer(middleware::from_fn_with_state(core, observe))
        .layer(middleware::from_fn(security_headers))
        .layer(CatchPanicLayer::new())
}

/// The client's address: the TCP peer, or what trusted proxies say of it in
/// `X-Forwarded-For` (see [`form::client_address`]).
pub struct Peer(pub IpAddr);

impl FromRequestParts<Arc<Core>> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &Arc<Core>,
    ) -> Result<Self, Self::Rejection> {
        let direct = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(Self(form::client_address(
            direct,
            &parts.headers,
            &core.cfg.trusted_proxies,
        )))
    }
}

/// A request id on every response and log line (the caller's `X-Request-Id` when
/// it is sane), and per-route latency in the metrics.
async fn observe(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
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
        .map_or_else(
            || crate::crypto::b64(&crate::crypto::random::<12>()),
            str::to_string,
        );
    let span = tracing::info_span!("request", id = %id, method = %req.method(), route = %route);
    let mut resp = next.run(req).instrument(span.clone()).await;
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

/// `nosniff` everywhere, and nothing cached unless the handler said otherwise.
async fn security_headers(req: Request, next: Next) -> Response {
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
        next.run(req).await
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

/// Connections the operator listener serves at once (scrapes and probes).
const OPS_MAX_CONNECTIONS: usize = 64;
/// Accept errors (EMFILE, ENFILE, ENOBUFS...) back off from this up to `ACCEPT_BACKOFF_MAX`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves the public port and the operator listener (`/metrics`) until `shutdown`
/// resolves, then stops accepting, ends the event streams and drains in-flight
/// requests (at most 10 s). Started by [`crate::app::serve`].
pub async fn serve(
    core: Arc<Core>,
    listener: TcpListener,
    ops: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let public = tokio::spawn(accept_loop(
        core.clone(),
        listener,
        router(core.clone()),
        core.cfg.max_connections,
        stop_rx.clone(),
        true,
    ));
    let operator = tokio::spawn(accept_loop(
        core.clone(),
        ops,
        ops::router(core.clone()),
        OPS_MAX_CONNECTIONS,
        stop_rx,
        false,
    ));
    shutdown.await;
    core.events.close();
    core.tail.close();
    let _ = stop_tx.send(true);
    let drained = async {
        let _ = tokio::join!(public, operator);
    };
    if tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .is_err()
    {
        tracing::warn!("shutdown: in-flight requests did not finish within 10 s");
    }
}

/// Accepts connections until `stop`, at most `limit` at once: one over the limit is
/// answered 503 and closed at once, so it holds no file descriptor. On the public
/// port, one over its address's share ([`addresses`]) is answered 429 likewise.
/// Returns when every connection has finished.
async fn accept_loop(
    core: Arc<Core>,
    listener: TcpListener,
    app: Router,
    limit: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
    public: bool,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limit));
    let per_address =
        public.then(|| addresses::PerAddress::new(core.cfg.max_connections_per_address.min(limit)));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            // The peer gave up between SYN and accept: nothing to back off from.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Best effort: a full send buffer just closes.
            let _ = tcp.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if public {
                core.metrics.connection_refused();
            }
            continue;
        };
        let address = match &per_address {
            Some(cap) if !core.cfg.trusted_proxies.contains(&remote.ip()) => {
                match cap.acquire(remote.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        let _ = tcp.try_write(
                            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        core.metrics.connection_refused_per_address();
                        continue;
                    }
                }
            }
            _ => None,
        };
        // Small writes (SSE events, token responses) go out at once, not after a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let conn = connection(core.clone(), tcp, remote, app.clone(), stop.clone(), public);
        tokio::spawn(async move {
            conn.await;
            drop((address, permit));
        });
    }
    drop(listener);
    let _ = slots
        .acquire_many(u32::try_from(limit).unwrap_or(u32::MAX))
        .await;
}

/// Accept errors that concern one connection only (`accept(2)`: the peer reset it).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Requests in flight on one connection, and since when it has had none (after
/// its first response; before, the header-read timeout alone bounds it). Monotonic
/// time: an idle timeout, not a reading of the clock the rules use.
type Activity = tokio::sync::watch::Sender<(usize, Option<tokio::time::Instant>)>;

/// One request in flight until its response body is done (or dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.send_modify(|(n, _)| *n += 1);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|(n, since)| {
            *n -= 1;
            *since = Some(tokio::time::Instant::now());
        });
    }
}

/// Resolves once the connection has had no request in flight for `after`.
async fn idle_for(activity: &Activity, after: Duration) {
    let mut rx = activity.subscribe();
    loop {
        let state = *rx.borrow_and_update();
        match state {
            (0, Some(since)) => tokio::select! {
                () = tokio::time::sleep_until(since + after) => return,
                _ = rx.changed() => {}
            },
            _ => {
                let _ = rx.changed().await;
            }
        }
    }
}

/// One connection: a stream that opens it is served by [`stream_conn`], anything
/// else by hyper ([`with_hyper`]).
async fn connection(
    core: Arc<Core>,
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    public: bool,
) {
    let _counted = public.then(|| core.metrics.connection());
    let io = if public {
        let opening = tokio::select! {
            opening = stream_conn::open(tcp, remote, core.cfg.header_read_timeout) => opening,
            _ = stop.wait_for(|s| *s) => return,
        };
        match opening {
            stream_conn::Opening::Stream(tcp, req) => {
                return stream_conn::serve(tcp, req, app).await;
            }
            stream_conn::Opening::Hyper(io) => io,
            stream_conn::Opening::Closed => return,
        }
    } else {
        stream_conn::Rewind::plain(tcp)
    };
    // Boxed: an idle stream's task is sized by the stream path, not by hyper's
    // connection state.
    Box::pin(with_hyper(core.clone(), io, remote, app, stop)).await;
}

/// One HTTP/1.1 connection served by hyper: the request head must be complete within
/// `header_read_timeout` of the connection being ready for it (its opening or the
/// previous response), and a connection idle for `keep_alive_timeout` after a
/// response is closed.
async fn with_hyper(
    core: Arc<Core>,
    io: stream_conn::Rewind,
    remote: SocketAddr,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let activity: Arc<Activity> = Arc::new(tokio::sync::watch::channel((0, None)).0);
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let busy = Busy::new(&activity);
            let call = app.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let resp = call.await?;
                // The request counts until hyper has sent (or dropped) the whole body.
                Ok::<_, std::convert::Infallible>(resp.map(|body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _in_flight = &busy;
                        frame
                    }))
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(core.cfg.header_read_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let keep_alive = core.cfg.keep_alive_timeout;
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            // Nothing in flight: dropping the connection closes it.
            () = idle_for(&activity, keep_alive) => break,
        }
    }
}
