//! `GET /end_session`: RP-initiated logout.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies::{cookies, read_cookie, set_cookie};
use super::request::{Refusal, bad_request, internal, redirect};
use crate::domain::Core;
use crate::http::{form, pages};

/// OpenID Connect RP-Initiated Logout 1.0: ends the browser session; redirects
/// only to a `post_logout_redirect_uri` the client registered.
pub(super) async fn end_session(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let result = async {
        let params = form::parse(uri.query().unwrap_or("").as_bytes())
            .map_err(|_| bad_request("The sign-out link is malformed."))?;
        let target = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let client_id = params
                    .get("client_id")
                    .map(str::to_string)
                    .or_else(|| params.get("id_token_hint").and_then(hint_audience));
                let client = match client_id {
                    Some(id) => core.clients.get(&core.db, &id).await.map_err(internal)?,
                    None => None,
                };
                let registered =
                    client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri));
                if !registered {
                    return Err(bad_request(
                        "The app asked to send you to an address it has not registered.",
                    ));
                }
                Some(uri.to_string())
            }
        };
        let c = cookies(&core);
        if let Some(token) = read_cookie(&headers, c.session) {
            core.end_browser_session(token).await.map_err(internal)?;
        }
        let mut extra = HeaderMap::new();
        set_cookie(
            &mut extra,
            format!("{}={}; Max-Age=0; SameSite=Lax", c.session, c.attributes),
        );
        Ok::<Response, Refusal>(match target {
            Some(uri) => {
                let state: Vec<(&str, &str)> = params
                    .get("state")
                    .map(|s| ("state", s))
                    .into_iter()
                    .collect();
                redirect(&uri, &state, extra)
            }
            None => pages::respond(
                StatusCode::OK,
                pages::message(
                    "You are signed out",
                    "You have been signed out of tessera. You can close this window.",
                ),
                None,
                extra,
            ),
        })
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
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
