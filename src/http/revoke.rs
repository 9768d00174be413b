//! `POST /revoke` (RFC 7009).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Peer;
use super::error::no_store;
use super::form::{self, FormError};
use crate::domain::Core;
use crate::error::OAuthError;

pub fn router() -> Router<Arc<Core>> {
    Router::new().route("/revoke", post(revoke))
}

async fn revoke(
    State(core): State<Arc<Core>>,
    Peer(peer): Peer,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (params, client) = form::authenticated(&core, peer, &uri, &headers, body).await?;
        let token = params.require("token")?;
        // `token_type_hint` only orders the lookup (§2.1); both kinds are tried anyway.
        core.revoke_token(&client, token)
            .await
            .map_err(OAuthError::from)?;
        Ok::<_, FormError>(())
    };
    match run.await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.counted(&core, "revoke").into_response(),
    }
}
