//! `DELETE /admin/users/{id}/factors`: an operator resets a user's second factors (a user
//! who lost their authenticator); every session of the user ends.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::delete;
use serde::Serialize;

use super::{Admin, Id, Result, not_found};
use crate::domain::Core;
use crate::domain::factors::FactorError;
use crate::domain::users::Users;
use crate::http::error::{HttpError, Surface};

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/admin/users/{id}/factors", delete(reset_factors))
}

/// How many factors the reset removed.
#[derive(Serialize)]
struct Reset {
    removed: u64,
}

async fn reset_factors(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(id): Id,
) -> Result<Json<Reset>> {
    match users.reset_factors(&by, &id).await {
        Ok(removed) => Ok(Json(Reset { removed })),
        Err(FactorError::NotFound) => Err(not_found("user")),
        Err(e) => Err(HttpError::internal(Surface::Admin, &e)),
    }
}
