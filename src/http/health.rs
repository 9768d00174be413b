//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::domain::Core;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
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
    ];
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        core.metrics.render(&gauges),
    )
}

/// Ready when the database answers (keys are loaded before the server listens).
async fn readyz(State(core): State<Arc<Core>>) -> (StatusCode, Json<Value>) {
    if core.db.ping().await {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok"})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": "unreachable"})),
        )
    }
}
