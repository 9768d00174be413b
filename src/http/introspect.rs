//! `POST /introspect` (RFC 7662).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::error::no_store;
use super::form::{ClientForm, FormError};
use crate::domain::Core;
use crate::domain::clients::Capability;
use crate::domain::signin::SignIn;
use crate::error::OAuthError;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/introspect", post(introspect))
}

async fn introspect(
    State(signin): State<SignIn>,
    ClientForm { params, client, .. }: ClientForm,
) -> Response {
    let run = async {
        // A public client proves nothing about itself (RFC 7662 §2.1: the caller authenticates).
        if client.is_public() {
            return Err(OAuthError::InvalidClient);
        }
        // Only resource servers may ask (DESIGN: capability `introspect`).
        if !client.can(Capability::Introspect) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not introspect tokens",
            ));
        }
        let token = params.require("token")?;
        Ok(signin
            .introspect(&client, token)
            .await?
            .unwrap_or_else(|| json!({"active": false})))
    };
    match run.await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => FormError::from(e)
            .counted(&signin.metrics, "introspect")
            .into_response(),
    }
}
