//! `GET /end_session` and its confirmation, `POST /end_session`: RP-initiated logout.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies::{check_csrf, cookies, csrf_token, read_cookie, set_cookie, signed_in};
use super::request::{Refusal, bad_request, internal, read_post, redirect};
use crate::domain::{Core, redirects};
use crate::http::form::{self, Params};
use crate::http::pages;

/// What the confirmation form carries over to `POST /end_session`.
const CARRIED: [&str; 3] = ["client_id", "post_logout_redirect_uri", "state"];

/// OpenID Connect RP-Initiated Logout 1.0: ends the browser session; redirects
/// only to a `post_logout_redirect_uri` the client registered. The user is asked
/// first (§2: the OP must, unless an ID token hint names the signed-in user), so a
/// link or an image on another site cannot sign anyone out.
pub(super) async fn end_session(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let result = async {
        let params = form::parse(uri.query().unwrap_or("").as_bytes())
            .map_err(|_| bad_request("The sign-out link is malformed."))?;
        let target = target(&core, &params).await?;
        let Some(session) = signed_in(&core, &headers).await? else {
            // Nobody to sign out: nothing to ask.
            return Ok(signed_out(&params, target));
        };
        let named = params.get("id_token_hint").is_some_and(|hint| {
            core.keys
                .current()
                .id_token_subject(hint, &core.cfg.issuer)
                .is_some_and(|sub| sub == session.user_id)
        });
        if named {
            return sign_out(&core, &headers, &params, target).await;
        }
        Ok(confirmation(&core, &headers, &params, target.as_deref()))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The confirmation form's answer: signs out, then as `GET /end_session` would.
pub(super) async fn end_session_confirmed(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let result = async {
        let params = read_post(&core, &headers, body).await?;
        check_csrf(&core, &headers, &params)?;
        let target = target(&core, &params).await?;
        sign_out(&core, &headers, &params, target).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Where to send the browser afterwards: a `post_logout_redirect_uri` registered by
/// the client the request names (`client_id`, or the hint's audience), or nowhere.
async fn target(core: &Core, params: &Params) -> Result<Option<String>, Refusal> {
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let client_id = params
        .get("client_id")
        .map(str::to_string)
        .or_else(|| params.get("id_token_hint").and_then(hint_audience));
    let client = match client_id {
        Some(id) => core.clients.get(&core.db, &id).await.map_err(internal)?,
        None => None,
    };
    let registered = client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri));
    if !registered {
        return Err(bad_request(
            "The app asked to send you to an address it has not registered.",
        ));
    }
    Ok(Some(uri.to_string()))
}

/// The page that asks whether to sign out, carrying the request to its form.
fn confirmation(
    core: &Core,
    headers: &HeaderMap,
    params: &Params,
    target: Option<&str>,
) -> Response {
    let mut extra = HeaderMap::new();
    let csrf = csrf_token(core, headers, &mut extra);
    let carried: Vec<(&'static str, String)> = CARRIED
        .iter()
        .filter_map(|&name| params.get(name).map(|v| (name, v.to_string())))
        .collect();
    // The form posts here and is then redirected to the app: both are allowed.
    let to = target.and_then(redirects::origin_of);
    pages::respond(
        StatusCode::OK,
        pages::confirm_sign_out(&carried, &csrf),
        Some(to.as_deref().unwrap_or("'self'")),
        extra,
    )
}

/// Ends the browser session the cookie names, then goes to `target` (with `state`)
/// or says so.
async fn sign_out(
    core: &Core,
    headers: &HeaderMap,
    params: &Params,
    target: Option<String>,
) -> Result<Response, Refusal> {
    let c = cookies(core);
    if let Some(token) = read_cookie(headers, c.session) {
        core.end_browser_session(token).await.map_err(internal)?;
    }
    let mut response = signed_out(params, target);
    set_cookie(
        response.headers_mut(),
        format!("{}={}; Max-Age=0; SameSite=Lax", c.session, c.attributes),
    );
    Ok(response)
}

fn signed_out(params: &Params, target: Option<String>) -> Response {
    match target {
        Some(uri) => {
            let state: Vec<(&str, &str)> = params
                .get("state")
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            redirect(&uri, &state, HeaderMap::new())
        }
        None => pages::respond(
            StatusCode::OK,
            pages::message(
                "You are signed out",
                "You have been signed out of tessera. You can close this window.",
            ),
            None,
            HeaderMap::new(),
        ),
    }
}

/// The `aud` of an ID token hint. Unverified: it only chooses whose registered
/// logout URIs to check, which an attacker cannot extend.
fn hint_audience(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match &claims["aud"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_string),
        _ => None,
    }
}
