//! `GET /authorize` and `POST /authorize` (RFC 6749 §4.1, RFC 7636, RFC 9207), the login
//! and consent forms behind it, and RP-initiated logout (`/end_session`).
//!
//! The authorization request travels through the forms as hidden fields and is
//! validated again on every step; nothing about it is kept on the server before a
//! code is issued. An unknown client or redirect URI is an error page, never a
//! redirect; every other error goes back to the app (§4.1.2.1).

mod consent;
mod cookies;
mod login;
mod logout;
mod request;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::form::{self, Params};
use super::pages;
use crate::domain::Core;
use crate::domain::clients::Client;
use crate::domain::codes::CodeGrant;
use consent::consent;
use cookies::{csrf_token, signed_in};
use login::{login, login_page};
use logout::{end_session, end_session_form};
use request::{AuthzRequest, Refusal, bad_request, internal, parse_request, read_post, redirect};

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/authorize", get(authorize).post(authorize_form))
        .route("/login", post(login))
        .route("/consent", post(consent))
        .route("/end_session", get(end_session).post(end_session_form))
}

fn app_name(client: &Client) -> &str {
    &client.id
}

async fn authorize(State(core): State<Arc<Core>>, headers: HeaderMap, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").as_bytes();
    let params = match form::parse(query) {
        Ok(p) => p,
        Err(_) => return bad_request("The sign-in link is malformed.").into_response(),
    };
    match start(&core, &headers, &params).await {
        Ok(r) | Err(r) => r,
    }
}

/// `POST /authorize`: the same request, form-encoded (OpenID Connect Core §3.1.2.1). Like
/// the GET it only starts a sign-in, so it needs no CSRF token.
async fn authorize_form(State(core): State<Arc<Core>>, headers: HeaderMap, body: Body) -> Response {
    let params = match read_post(&core, &headers, body).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match start(&core, &headers, &params).await {
        Ok(r) | Err(r) => r,
    }
}

async fn start(core: &Core, headers: &HeaderMap, params: &Params) -> Result<Response, Response> {
    let req = parse_request(core, params)
        .await
        .map_err(IntoResponse::into_response)?;
    let session = signed_in(core, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let now = core.clock.now();
    // max_age=0 is prompt=login (OpenID Connect Core §3.1.2.1).
    let fresh = |auth_time: i64| req.max_age.is_none_or(|m| m > 0 && now - auth_time <= m);
    match session {
        Some(s) if !req.prompt_login && fresh(s.auth_time) => Ok(proceed(
            core,
            &req,
            headers,
            &s.user_id,
            s.auth_time,
            HeaderMap::new(),
        )
        .await),
        _ if req.prompt_none => Err(req
            .error(core, "login_required", "the user is not signed in")
            .into_response()),
        _ => Ok(login_page(
            core,
            &req,
            headers,
            StatusCode::OK,
            "",
            None,
            HeaderMap::new(),
        )),
    }
}

/// A signed-in user: consent if the client needs it, else a code back to the app.
async fn proceed(
    core: &Core,
    req: &AuthzRequest,
    headers: &HeaderMap,
    user_id: &str,
    auth_time: i64,
    mut extra: HeaderMap,
) -> Response {
    let result = async {
        let user = core
            .users
            .user(user_id)
            .await
            .map_err(internal)?
            .filter(|u| !u.disabled);
        let Some(user) = user else {
            return Ok(login_page(
                core,
                req,
                headers,
                StatusCode::OK,
                "",
                None,
                extra.clone(),
            ));
        };
        if req.client.third_party {
            let remembered = core
                .browser
                .has_consent(&user.id, &req.client.id, &req.scope)
                .await
                .map_err(internal)?;
            if req.prompt_consent || !remembered {
                if req.prompt_none {
                    return Err(req.error(core, "consent_required", "the user has not consented"));
                }
                let csrf = csrf_token(core, headers, &mut extra);
                let scopes: Vec<&str> = req.scope.split(' ').filter(|s| !s.is_empty()).collect();
                let page = pages::consent(
                    app_name(&req.client),
                    &user.username,
                    &scopes,
                    &req.carried,
                    &csrf,
                );
                return Ok(pages::respond(
                    StatusCode::OK,
                    page,
                    req.form_action().as_deref(),
                    extra.clone(),
                ));
            }
        }
        Ok::<Response, Refusal>(
            issue(
                core,
                req,
                &user.id,
                user.authz_version,
                auth_time,
                extra.clone(),
            )
            .await,
        )
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn issue(
    core: &Core,
    req: &AuthzRequest,
    user_id: &str,
    authz_version: i64,
    auth_time: i64,
    extra: HeaderMap,
) -> Response {
    let grant = CodeGrant {
        client_id: &req.client.id,
        user_id,
        authz_version,
        redirect_uri: &req.redirect_uri,
        code_challenge: &req.code_challenge,
        scope: &req.scope,
        nonce: req.nonce.as_deref(),
        auth_time,
    };
    match core.issue_code(grant).await {
        Ok(code) => {
            let mut params = vec![("code", code.as_str()), ("iss", core.cfg.issuer.as_str())];
            if let Some(s) = &req.state {
                params.push(("state", s.as_str()));
            }
            redirect(&req.redirect_uri, &params, extra)
        }
        Err(e) => internal(e).into_response(),
    }
}
