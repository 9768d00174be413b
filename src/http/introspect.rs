//! `POST /introspect` (RFC 7662).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::Peer;
use super::error::no_store;
use super::form::{self, FormError};
use crate::domain::Core;
use crate::error::OAuthError;

pub fn router() -> Router<Arc<Core>> {
    Router::new().route("/introspect", post(introspect))
}

async fn introspect(
    State(core): State<Arc<Core>>,
    Peer(peer): Peer,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (params, client) = form::authenticated(&core, peer, &uri, &headers, body).await?;
        // Only resource servers may ask (DESIGN: capability `introspect`).
        // A public client proves nothing about itself (RFC 7662 §2.1: the caller authenticates).
        if client.is_public() {
            return Err(FormError::Invalid(OAuthError::InvalidClient));
        }
        if !client.can("introspect") {
            return Err(FormError::Invalid(OAuthError::UnauthorizedClient(
                "this client may not introspect tokens",
            )));
        }
        let token = params.require("token")?;
        let answer = core
            .introspect(&client, token)
            .await
            .map_err(OAuthError::from)?;
        Ok(answer.unwrap_or_else(|| json!({"active": false})))
    };
    match run.await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => e.counted(&core, "introspect").into_response(),
    }
}
