//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::domain::Core;

/// Public; also served on the operator listener.
pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
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
