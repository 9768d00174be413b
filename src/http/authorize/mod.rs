//! `GET /authorize` and `POST /authorize` (RFC 6749 §4.1, RFC 7636, RFC 9207), the login
//! and consent forms behind it, and RP-initiated logout (`/end_session`).
//!
//! The authorization request travels through the forms as hidden fields and is
//! validated again on every step; nothing about it is kept on the server before a
//! code is issued. An unknown client or redirect URI is an error page, never a
//! redirect; every other error goes back to the app (§4.1.2.1).

mod consent;
pub(super) mod cookies;
pub(super) mod login;
mod logout;
pub(super) mod passkey;
pub(super) mod request;
pub(super) mod second;

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
use crate::domain::browser::BrowserSession;
use crate::domain::clients::Client;
use crate::domain::codes::CodeGrant;
use crate::domain::signin::SignIn;
use crate::domain::signin::rules::{self, Authentication, Consent};
use consent::consent;
use cookies::{csrf_token, signed_in};
use login::{login, login_page};
use logout::{end_session, end_session_form};
use request::{AuthzRequest, Refusal, bad_request, internal, parse_request, read_post, redirect};

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/authorize", get(authorize).post(authorize_form))
        .route("/login", post(login))
        .route("/login/mfa", post(second::login_mfa))
        .route("/login/passkey", post(passkey::login_passkey))
        .route("/passkeys/options", post(passkey::options))
        .route("/consent", post(consent))
        .route("/end_session", get(end_session).post(end_session_form))
}

fn app_name(client: &Client) -> &str {
    &client.id
}

async fn authorize(State(signin): State<SignIn>, headers: HeaderMap, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").as_bytes();
    let params = match form::parse(query) {
        Ok(p) => p,
        Err(_) => return bad_request("The sign-in link is malformed.").into_response(),
    };
    match start(&signin, &headers, &params).await {
        Ok(r) | Err(r) => r,
    }
}

/// `POST /authorize`: the same request, form-encoded (OpenID Connect Core §3.1.2.1). Like
/// the GET it only starts a sign-in, so it needs no CSRF token.
async fn authorize_form(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    let params = match read_post(&signin, &headers, body).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match start(&signin, &headers, &params).await {
        Ok(r) | Err(r) => r,
    }
}

async fn start(
    signin: &SignIn,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, Response> {
    let req = parse_request(signin, params)
        .await
        .map_err(IntoResponse::into_response)?;
    let session = signed_in(signin, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let now = signin.clock.now();
    match rules::authentication(session.as_ref(), req.prompt, req.max_age, now) {
        Authentication::SignedIn(s) => {
            Ok(proceed(signin, &req, headers, s, HeaderMap::new()).await)
        }
        Authentication::LoginRequired => Err(req
            .error(signin, "login_required", "the user is not signed in")
            .into_response()),
        Authentication::Login => Ok(login_page(
            signin,
            &req,
            headers,
            StatusCode::OK,
            "",
            None,
            HeaderMap::new(),
        )),
    }
}

/// A signed-in user (`session`): the second step if the request
/// needs one, consent if the client needs it, else a code back to the app.
async fn proceed(
    signin: &SignIn,
    req: &AuthzRequest,
    headers: &HeaderMap,
    session: &BrowserSession,
    mut extra: HeaderMap,
) -> Response {
    let result = async {
        let user = signin
            .users
            .user(&session.user_id)
            .await
            .map_err(internal)?
            .filter(|u| !u.disabled);
        let Some(user) = user else {
            return Ok(login_page(
                signin,
                req,
                headers,
                StatusCode::OK,
                "",
                None,
                extra.clone(),
            ));
        };
        if let Some(page) = second::second_step(signin, req, headers, session, &extra).await? {
            return Ok(page);
        }
        let consent = signin
            .consent(&req.client, &user.id, &req.scope, req.prompt)
            .await
            .map_err(internal)?;
        match consent {
            Consent::Given => {}
            Consent::Required => {
                return Err(req.error(signin, "consent_required", "the user has not consented"));
            }
            Consent::Ask => {
                let csrf = csrf_token(signin, headers, &mut extra);
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
            issue(signin, req, session, user.authz_version, extra.clone()).await,
        )
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn issue(
    signin: &SignIn,
    req: &AuthzRequest,
    session: &BrowserSession,
    authz_version: i64,
    extra: HeaderMap,
) -> Response {
    let grant = CodeGrant {
        client_id: &req.client.id,
        user_id: &session.user_id,
        authz_version,
        redirect_uri: &req.redirect_uri,
        code_challenge: &req.code_challenge,
        scope: &req.scope,
        nonce: req.nonce.as_deref(),
        auth_time: session.auth_time,
        amr: &session.amr,
    };
    match signin.issue_code(grant).await {
        Ok(code) => {
            let mut params = vec![("code", code.as_str()), ("iss", signin.cfg.issuer.as_str())];
            if let Some(s) = &req.state {
                params.push(("state", s.as_str()));
            }
            redirect(&req.redirect_uri, &params, extra)
        }
        Err(e) => internal(e).into_response(),
    }
}
