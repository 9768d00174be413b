//! `POST /revoke` (RFC 7009).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::cors;
use super::error::no_store;
use super::form::{ClientForm, FormError};
use crate::domain::Core;
use crate::domain::signin::SignIn;
use crate::error::OAuthError;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/revoke", post(revoke))
}

async fn revoke(
    State(signin): State<SignIn>,
    headers: HeaderMap,
    ClientForm { params, client, .. }: ClientForm,
) -> Response {
    if let Some(refused) = cors::refused_form(&signin.metrics, &headers, &client, "revoke") {
        return refused;
    }
    let run = async {
        let token = params.require("token")?;
        // `token_type_hint` only orders the lookup (§2.1); both kinds are tried anyway.
        signin.revoke_token(&client, token).await?;
        Ok::<_, OAuthError>(())
    };
    match run.await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => FormError::from(e)
            .counted(&signin.metrics, "revoke")
            .into_response(),
    }
}
