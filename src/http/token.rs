//! `POST /token` (RFC 6749 §3.2, §4.3, §4.4, §6).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::error::no_store;
use super::form::{self, FormError};
use crate::domain::Core;
use crate::domain::tokens::TokenResponse;
use crate::error::OAuthError;

pub fn router() -> Router<Arc<Core>> {
    Router::new().route("/token", post(token))
}

async fn token(
    State(core): State<Arc<Core>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&core, &uri, &headers, body).await {
        Ok(resp) => no_store(Json(resp).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    core: &Core,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<TokenResponse, FormError> {
    let (mut params, client) = form::authenticated(core, uri, headers, body).await?;
    let grant_type = params.require("grant_type")?.to_string();
    let scope = params.get("scope").map(str::to_string);
    let resource = params.get("resource").map(str::to_string);
    let (scope, resource) = (scope.as_deref(), resource.as_deref());
    let resp = match grant_type.as_str() {
        "password" => {
            let username = params.require("username")?.to_string();
            params.require("password")?;
            let password = params.take_secret("password").expect("checked above");
            core.password_grant(&client, &username, password, scope, resource)
                .await
        }
        "refresh_token" => {
            let token = params.require("refresh_token")?;
            core.refresh_grant(&client, token, scope, resource).await
        }
        "client_credentials" => {
            core.client_credentials_grant(&client, scope, resource)
                .await
        }
        _ => Err(OAuthError::UnsupportedGrantType),
    };
    Ok(resp?)
}
