//! `POST /token` (RFC 6749 §3.2, §4.3, §4.4, §6).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::cors;
use super::error::no_store;
use super::form::{ClientForm, FormError, require_identifier};
use crate::domain::Core;
use crate::domain::clients::GrantType;
use crate::domain::signin::SignIn;
use crate::domain::tokens::TokenResponse;
use crate::error::OAuthError;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/token", post(token))
}

async fn token(State(signin): State<SignIn>, headers: HeaderMap, form: ClientForm) -> Response {
    if let Some(refused) = cors::refused_form(&signin.metrics, &headers, &form.client, "token") {
        return refused;
    }
    // Boxed: the grants' futures (the password grant's hashing, the code and refresh
    // grants' statements) would otherwise make every request's future, moved through
    // each layer of the router, kilobytes larger.
    match Box::pin(handle(&signin, form)).await {
        Ok(resp) => no_store(Json(resp).into_response()),
        Err(e) => FormError::from(e)
            .counted(&signin.metrics, "token")
            .into_response(),
    }
}

async fn handle(
    signin: &SignIn,
    ClientForm {
        mut params,
        client,
        peer,
    }: ClientForm,
) -> Result<TokenResponse, OAuthError> {
    let grant_type: GrantType = params
        .require("grant_type")?
        .parse()
        .map_err(|_| OAuthError::UnsupportedGrantType)?;
    let scope = params.get("scope").map(str::to_string);
    let resource = params.get("resource").map(str::to_string);
    let (scope, resource) = (scope.as_deref(), resource.as_deref());
    let resp = match grant_type {
        GrantType::Password => {
            let username = params.require("username")?.to_string();
            require_identifier("username", &username)?;
            params.require("password")?;
            let password = params.take_secret("password").expect("checked above");
            let grant = signin.password_grant(&client, &username, password, scope, resource);
            signin.throttled_login(&username, peer, None, grant).await?
        }
        GrantType::AuthorizationCode => {
            let code = params.require("code")?;
            let redirect_uri = params.require("redirect_uri")?;
            let verifier = params.require("code_verifier")?;
            signin
                .authorization_code_grant(&client, code, redirect_uri, verifier)
                .await
        }
        GrantType::RefreshToken => {
            let token = params.require("refresh_token")?;
            signin.refresh_grant(&client, token, scope, resource).await
        }
        GrantType::ClientCredentials => {
            signin
                .client_credentials_grant(&client, scope, resource)
                .await
        }
    };
    if resp.is_ok() {
        signin.metrics.token_issued(grant_type.as_str(), &client.id);
    }
    resp
}
