//! `POST /token` (RFC 6749 §3.2, §4.3, §4.4, §6).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::error::no_store;
use super::form::{self, FormError};
use crate::domain::Core;
use crate::domain::clients::AuthError;
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
        Err(FormError::TooLarge) => too_large(),
        Err(FormError::Invalid(e)) => e.into_response(),
    }
}

pub fn too_large() -> Response {
    no_store(
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(
                json!({"error": "invalid_request", "error_description": "request body too large"}),
            ),
        )
            .into_response(),
    )
}

/// Credentials never travel in the URL (RFC 6749 §2.3.1, §3.2).
pub fn reject_credentials_in_query(uri: &Uri) -> Result<(), OAuthError> {
    if let Some(q) = uri.query() {
        let params = form::parse(q.as_bytes())
            .map_err(|_| OAuthError::invalid_request("malformed query string"))?;
        for name in ["client_secret", "password", "refresh_token", "token"] {
            if params.contains(name) {
                return Err(OAuthError::invalid_request(format!(
                    "`{name}` must not be sent in the query string"
                )));
            }
        }
    }
    Ok(())
}

async fn handle(
    core: &Core,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<crate::domain::tokens::TokenResponse, FormError> {
    reject_credentials_in_query(uri).map_err(FormError::Invalid)?;
    let mut params = form::read_form(headers, body).await?;
    let run = async {
        let grant_type = params.require("grant_type")?.to_string();
        let creds = form::client_credentials(headers, &mut params)?;
        let client = core
            .clients
            .authenticate(&core.db, &creds)
            .await
            .map_err(|e| match e {
                AuthError::Failed => OAuthError::InvalidClient,
                AuthError::Store(e) => e.into(),
            })?;
        let scope = params.get("scope").map(str::to_string);
        let resource = params.get("resource").map(str::to_string);
        let (scope, resource) = (scope.as_deref(), resource.as_deref());
        match grant_type.as_str() {
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
        }
    };
    run.await.map_err(FormError::Invalid)
}
