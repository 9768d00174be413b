//! `GET` and `POST /userinfo` (OpenID Connect Core §5.3): who the token's user is now,
//! from the database, as far as the token's client may know (see [`crate::domain::scopes`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::error::HttpError;
use super::form::{self, FormError};
use super::{bearer, cors};
use crate::domain::Core;
use crate::domain::scopes::{self, PROFILE, ROLES};
use crate::domain::signin::SignIn;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/userinfo", get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(State(signin): State<SignIn>, headers: HeaderMap) -> Response {
    match bearer::token(&headers) {
        Ok(token) => answer(&signin, &headers, token).await,
        Err(e) => e.into_response(),
    }
}

/// Core §5.3.1: POST too, the token in the `Authorization` header or as `access_token` in a
/// form body (RFC 6750 §2.2), never both (RFC 6750 §2).
async fn userinfo_post(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return userinfo_get(State(signin), headers).await;
    }
    let params = match form::read_form(&headers, body, signin.cfg.request_timeout / 2).await {
        Ok(p) => p,
        Err(FormError::Body(e)) => return HttpError::from(e).into_response(),
        Err(FormError::Invalid(e)) => return HttpError::from(e).into_response(),
    };
    let token = match (
        params.get("access_token"),
        headers.contains_key(header::AUTHORIZATION),
    ) {
        (Some(_), true) => {
            return HttpError::invalid_request("send the access token one way, not two")
                .into_response();
        }
        (Some(token), false) => bearer::well_formed(token),
        (None, _) => bearer::token(&headers),
    };
    match token {
        Ok(token) => answer(&signin, &headers, token).await,
        Err(e) => e.into_response(),
    }
}

async fn answer(signin: &SignIn, headers: &HeaderMap, token: &str) -> Response {
    let result = async {
        let caller = bearer::verify_token(&signin.tokens, token)?;
        let user = bearer::live_user(&signin.live, &caller).await?;
        let client = bearer::client_of(&signin.live, &caller).await?;
        if let Some(refused) = cors::refused_bearer(headers, client.as_deref()) {
            return Ok(refused);
        }
        // A client that is gone is treated as a stranger.
        let third_party = client.is_none_or(|c| c.third_party);
        let scope = caller.claims.scope.as_deref().unwrap_or("");
        let mut info = json!({ "sub": user.id });
        if scopes::receives(third_party, scope, PROFILE) {
            info["preferred_username"] = json!(user.username);
            info["username"] = json!(user.username);
        }
        if scopes::receives(third_party, scope, ROLES) {
            let stale = caller.claims.ver.is_some_and(|v| v < user.authz_version);
            info["roles"] = json!(user.roles);
            info["ver"] = json!(user.authz_version);
            info["stale"] = json!(stale);
        }
        Ok::<_, HttpError>(Json(info).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
