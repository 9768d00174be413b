//! The operator listener (`ops_bind`, default 127.0.0.1:9090): `/metrics` and
//! `/healthz`, apart from the public port, as Keycloak's management port and
//! Hydra's admin port are. The metrics name the deployment's clients and routes,
//! which is nothing for whoever can reach the public port.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::domain::Core;

pub(super) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(super::health::healthz))
        .with_state(core)
}

/// Prometheus text format.
async fn metrics(State(core): State<Arc<Core>>) -> impl IntoResponse {
    let gauges = [
        (
            "tessera_sse_subscribers",
            "open SSE streams",
            core.events.open_streams() as f64,
        ),
        (
            "tessera_db_read_pool_connections",
            "reader pool connections",
            f64::from(core.db.read.size()),
        ),
        (
            "tessera_db_read_pool_idle",
            "idle reader pool connections",
            core.db.read.num_idle() as f64,
        ),
        (
            "tessera_signing_keys_published",
            "keys in the JWKS",
            core.keys.current().published as f64,
        ),
        (
            "tessera_event_feed_reads",
            "database reads made by the event feed's in-memory tail (one per wake-up), since start",
            core.tail.reads() as f64,
        ),
        (
            "tessera_event_feed_catch_up_reads",
            "database reads made by subscribers behind the in-memory tail, since start",
            core.tail.catch_ups() as f64,
        ),
        (
            "tessera_event_feed_users_watched",
            "users with an open stream or long-poll on this instance",
            core.tail.watched_users() as f64,
        ),
        (
            "tessera_http_connections",
            "open connections on the public port",
            core.metrics.connections() as f64,
        ),
    ];
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        core.metrics.render(&gauges),
    )
}
