//! `GET /userinfo`: who the token's user is now, from the database.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::bearer;
use super::error::HttpError;
use crate::domain::Core;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/userinfo", get(userinfo))
}

async fn userinfo(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    let caller = bearer::verify(&core, &headers)?;
    let user = bearer::live_user(&core, &caller).await?;
    let stale = caller.claims.ver.is_some_and(|v| v < user.authz_version);
    Ok(Json(json!({
        "sub": user.id,
        "preferred_username": user.username,
        "username": user.username,
        "roles": user.roles,
        "ver": user.authz_version,
        "stale": stale,
    })))
}
