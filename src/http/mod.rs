//! The HTTP surface. Handlers know HTTP; the domain does the work.

pub mod error;
pub mod form;
mod health;
mod token;
mod wellknown;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::domain::Core;

/// Every route of tessera; `main` and the tests both serve this.
pub fn router(core: Arc<Core>) -> Router {
    let timeout = core.cfg.request_timeout;
    Router::new()
        .merge(token::router())
        .merge(wellknown::router())
        .merge(health::router())
        .with_state(core)
        .layer(middleware::from_fn(security_headers))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
}

/// `nosniff` everywhere, and nothing cached unless the handler said otherwise.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
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

/// Serves until `shutdown` resolves, then drains in-flight requests (bounded).
pub async fn serve(
    core: Arc<Core>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = crate::background::spawn(core.clone());
    let app = router(core.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stop = stop_rx.clone();
    let drained = async move {
        let _ = stop.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    tokio::select! {
        r = server => r?,
        () = drained => tracing::warn!("shutdown: in-flight requests did not finish within 10 s"),
    }
    background.abort();
    core.db.close().await;
    Ok(())
}
