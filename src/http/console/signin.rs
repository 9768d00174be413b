//! Signing in to the console through tessera's own authorization code flow with PKCE: the
//! console is the first-party public client `tessera-console`; the code comes back to
//! `/console/callback` and is exchanged on the server (the SignIn service, as `/token` does).
//! Sign-out ends the console session and its tessera session.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{
    Console, cookie_name, internal, layout, page_error, read_cookie, see_other, set_cookie,
};
use crate::crypto::{self, b64, ct_eq, sha256};
use crate::domain::Core;
use crate::domain::console::{self, CLIENT_ID, Operator};
use crate::http::bearer;

/// The cookie that carries the sign-in in progress (`state.verifier`), for ten minutes.
const FLOW_COOKIE: &str = "tessera_console_flow";

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/console", get(home))
        .route("/console/login", get(login))
        .route("/console/callback", get(callback))
        .route("/console/logout", post(logout))
        .route("/console/signed-out", get(signed_out))
}

async fn home(_console: Console) -> Response {
    see_other("/console/users")
}

/// Starts the code flow: a fresh PKCE verifier and state, kept in a short-lived cookie.
async fn login(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    if let Some(token) = read_cookie(&headers, cookie_name(&core)) {
        if let Ok(Operator::Admin { .. }) = console::operator(&core, token).await {
            return see_other("/console/users");
        }
    }
    match core.clients.get(&core.db, CLIENT_ID).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The console is unavailable: tessera's issuer must be https (or http on a loopback address).",
            );
        }
        Err(e) => return internal(&e),
    }
    let (state, verifier) = (crypto::random_token(), crypto::random_token());
    let challenge = b64(&sha256(verifier.as_bytes()));
    let mut to = url::Url::parse(&core.cfg.issuer)
        .and_then(|u| u.join("/authorize"))
        .expect("the issuer is a URL");
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &console::redirect_uri(&core.cfg.issuer))
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut resp = see_other(to.as_str());
    set_cookie(
        &core,
        resp.headers_mut(),
        FLOW_COOKIE,
        &format!("{state}.{verifier}"),
        "Path=/console; SameSite=Lax; Max-Age=600",
    );
    resp
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The code comes back: the state must be this browser's, the code is exchanged with its
/// verifier, and the console session is bound to the user and the tessera session it started.
async fn callback(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return page_error(StatusCode::BAD_REQUEST, "The sign-in answer is malformed.");
    };
    let flow = read_cookie(&headers, FLOW_COOKIE).and_then(|f| f.split_once('.'));
    let (Some((state, verifier)), Some(given)) = (flow, q.state.as_deref()) else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, or took too long. Open /console to sign in again.",
        );
    };
    if !ct_eq(state.as_bytes(), given.as_bytes()) {
        return page_error(
            StatusCode::BAD_REQUEST,
            "This sign-in answer is not for this browser. Open /console to sign in again.",
        );
    }
    if let Some(error) = q.error {
        let text = match error.as_str() {
            "access_denied" => "Sign-in was cancelled.",
            _ => "Sign-in failed. Open /console to try again.",
        };
        return page_error(StatusCode::FORBIDDEN, text);
    }
    let Some(code) = q.code else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "The sign-in answer carries no code.",
        );
    };
    let client = match core.clients.get(&core.db, CLIENT_ID).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The console is not registered.",
            );
        }
        Err(e) => return internal(&e),
    };
    let redirect = console::redirect_uri(&core.cfg.issuer);
    let tokens = match core
        .signin
        .authorization_code_grant(&client, &code, &redirect, verifier)
        .await
    {
        Ok(t) => t,
        Err(_) => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "The sign-in code was refused (used or expired). Open /console to sign in again.",
            );
        }
    };
    let Ok(caller) = bearer::verify_token(&core.tokens, &tokens.access_token) else {
        return page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The sign-in could not be read.",
        );
    };
    let Some(sid) = caller.claims.sid.as_deref() else {
        return page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The sign-in has no session.",
        );
    };
    let token = match console::start(&core, &caller.claims.sub, sid).await {
        Ok(t) => t,
        Err(e) => return internal(&e),
    };
    let mut resp = see_other("/console/users");
    let h = resp.headers_mut();
    set_cookie(
        &core,
        h,
        cookie_name(&core),
        &token,
        "Path=/; SameSite=Strict",
    );
    set_cookie(
        &core,
        h,
        FLOW_COOKIE,
        "",
        "Path=/console; SameSite=Lax; Max-Age=0",
    );
    resp
}

/// Ends the console session and its tessera session, then asks tessera to end the browser's
/// sign-in too (RP-initiated logout, which confirms with the operator). A user who is no
/// longer an administrator may sign out too; a forged form may not.
async fn logout(State(core): State<Arc<Core>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(refused) = super::checked_form(&core, &parts.headers, body).await {
        return refused;
    }
    if let Some(token) = read_cookie(&parts.headers, cookie_name(&core)) {
        if let Err(e) = console::end(&core, token).await {
            return internal(&e);
        }
    }
    let mut to = url::Url::parse(&core.cfg.issuer)
        .and_then(|u| u.join("/end_session"))
        .expect("the issuer is a URL");
    to.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair(
            "post_logout_redirect_uri",
            &console::signed_out_uri(&core.cfg.issuer),
        );
    let mut resp = see_other(to.as_str());
    let name = cookie_name(&core);
    set_cookie(
        &core,
        resp.headers_mut(),
        name,
        "",
        "Path=/; SameSite=Strict; Max-Age=0",
    );
    resp
}

async fn signed_out() -> Response {
    super::respond(
        StatusCode::OK,
        layout::message("Signed out", "You are signed out of the console."),
        HeaderMap::new(),
    )
}
