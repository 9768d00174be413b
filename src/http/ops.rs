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
use crate::metrics::{CONTENT_TYPE, Sample};

pub(super) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(super::health::healthz))
        .with_state(core)
}

/// The OpenMetrics exposition, with the gauges read from the server now.
async fn metrics(State(core): State<Arc<Core>>) -> impl IntoResponse {
    let sample = Sample {
        sse_subscribers: core.events.open_streams(),
        read_pool_connections: core.db.read.size(),
        read_pool_idle: core.db.read.num_idle(),
        signing_keys_published: core.keys.current().published,
        feed_reads: core.feed.tail.reads(),
        feed_catch_up_reads: core.feed.tail.catch_ups(),
        feed_users_watched: core.feed.tail.watched_users(),
        feed_lane_parked: core.feed.lane.parked(),
        feed_lane_writes: core.feed.lane.writes(),
        feed_lane_handbacks: core.feed.lane.handbacks(),
        throttle_waiting: core.signin.throttle.waiting(),
        throttle_keys: core.signin.throttle.keys(),
    };
    match core.ssf.figures().await {
        Ok(streams) => core.metrics.set_ssf_streams(&streams),
        Err(e) => tracing::warn!(error = %e, "reading the Shared Signals streams' figures"),
    }
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        core.metrics.scrape(&sample),
    )
}
