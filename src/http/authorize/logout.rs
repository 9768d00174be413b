//! `GET /end_session` and `POST /end_session`: RP-initiated logout and its confirmation.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies::{check_csrf, cookies, csrf_token, read_cookie, set_cookie, signed_in};
use super::request::{Refusal, bad_request, internal, read_post, redirect};
use crate::domain::keys::IdTokenHint;
use crate::domain::redirects;
use crate::domain::signin::SignIn;
use crate::http::form::{self, Params};
use crate::http::pages;

/// The parameters of an RP's logout request that tessera acts on (RP-Initiated Logout 1.0 §2).
const REQUEST: [&str; 4] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];

/// Where to go after signing out: a `post_logout_redirect_uri` its client registered.
struct Target {
    client_id: String,
    uri: String,
}

/// OpenID Connect RP-Initiated Logout 1.0: ends the browser session; redirects
/// only to a `post_logout_redirect_uri` the client registered. The user is asked
/// first (§2: the OP must, unless an ID token hint names the signed-in user), so a
/// link or an image on another site cannot sign anyone out.
pub(super) async fn end_session(
    State(signin): State<SignIn>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let result = async {
        let params = form::parse(uri.query().unwrap_or("").as_bytes())
            .map_err(|_| bad_request("The sign-out link is malformed."))?;
        logout(&signin, &headers, &params).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /end_session`: an app's logout request sent as a form (§2 allows GET and POST),
/// or the answer of the confirmation form, which alone carries a CSRF token.
pub(super) async fn end_session_form(
    State(signin): State<SignIn>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let result = async {
        let params = read_post(&signin, &headers, body).await?;
        if !params.contains("csrf") {
            return app_post(&signin, &headers, &params).await;
        }
        check_csrf(&signin, &headers, &params)?;
        let target = target(&signin, &params, None).await?;
        sign_out(&signin, &headers, &params, target).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// An app's form POST. A cross-site POST does not carry the `SameSite=Lax` session
/// cookie, so without one the request goes on as a GET (a top-level navigation, which
/// carries it) instead of concluding that nobody is signed in.
async fn app_post(
    signin: &SignIn,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, Refusal> {
    if read_cookie(headers, cookies(signin).session).is_some() {
        return logout(signin, headers, params).await;
    }
    checked(signin, params).await?;
    let query: Vec<(&str, &str)> = REQUEST
        .iter()
        .filter_map(|&name| params.get(name).map(|v| (name, v)))
        .collect();
    let own = format!("{}/end_session", signin.cfg.issuer);
    Ok(redirect(&own, &query, HeaderMap::new()))
}

/// The logout request, however it arrived: signs out at once when a valid hint names
/// the signed-in user, else asks.
async fn logout(
    signin: &SignIn,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, Refusal> {
    let (hint, target) = checked(signin, params).await?;
    let Some(session) = signed_in(signin, headers).await? else {
        // Nobody to sign out: nothing to ask.
        return Ok(signed_out(params, target));
    };
    if hint.is_some_and(|h| h.sub == session.user_id) {
        return sign_out(signin, headers, params, target).await;
    }
    Ok(confirmation(signin, headers, params, target.as_ref()))
}

/// Checks a logout request: the hint verified, when given (a hint that does not verify
/// forfeits the redirect); `client_id`, when given with a valid hint, one of its audiences
/// (§2), else an error page and no redirect.
async fn checked(
    signin: &SignIn,
    params: &Params,
) -> Result<(Option<IdTokenHint>, Option<Target>), Refusal> {
    let hint = params
        .get("id_token_hint")
        .map(|h| signin.keys.current().id_token_hint(h, &signin.cfg.issuer));
    if let (Some(Some(h)), Some(id)) = (&hint, params.get("client_id")) {
        if !h.aud.iter().any(|a| a == id) {
            return Err(bad_request(
                "The app that sent you here is not the one your sign-in was for.",
            ));
        }
    }
    let target = match &hint {
        Some(None) => None,
        Some(Some(h)) => target(signin, params, h.aud.first().map(String::as_str)).await?,
        None => target(signin, params, None).await?,
    };
    Ok((hint.flatten(), target))
}

/// Where to send the browser afterwards: a `post_logout_redirect_uri` registered by
/// the client the request names (`client_id`, or else the hint's audience), or nowhere.
async fn target(
    signin: &SignIn,
    params: &Params,
    hint_audience: Option<&str>,
) -> Result<Option<Target>, Refusal> {
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let client = match params.get("client_id").or(hint_audience) {
        Some(id) => signin.clients.get(&signin.db, id).await.map_err(internal)?,
        None => None,
    };
    match client {
        Some(c) if c.post_logout_redirect_uris.iter().any(|u| u == uri) => Ok(Some(Target {
            client_id: c.id.clone(),
            uri: uri.to_string(),
        })),
        _ => Err(bad_request(
            "The app asked to send you to an address it has not registered.",
        )),
    }
}

/// The page that asks whether to sign out. Its form carries the checked target (with
/// its client, so the answer need not repeat the hint) and `state`.
fn confirmation(
    signin: &SignIn,
    headers: &HeaderMap,
    params: &Params,
    target: Option<&Target>,
) -> Response {
    let mut extra = HeaderMap::new();
    let csrf = csrf_token(signin, headers, &mut extra);
    let mut carried: Vec<(&'static str, String)> = Vec::new();
    if let Some(t) = target {
        carried.push(("client_id", t.client_id.clone()));
        carried.push(("post_logout_redirect_uri", t.uri.clone()));
    }
    if let Some(state) = params.get("state") {
        carried.push(("state", state.to_string()));
    }
    // The form posts here and is then redirected to the app: both are allowed.
    let to = target.and_then(|t| redirects::origin_of(&t.uri));
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
    signin: &SignIn,
    headers: &HeaderMap,
    params: &Params,
    target: Option<Target>,
) -> Result<Response, Refusal> {
    let c = cookies(signin);
    if let Some(token) = read_cookie(headers, c.session) {
        signin
            .browser
            .end_browser_session(token)
            .await
            .map_err(internal)?;
    }
    let mut response = signed_out(params, target);
    set_cookie(
        response.headers_mut(),
        format!("{}={}; Max-Age=0; SameSite=Lax", c.session, c.attributes),
    );
    Ok(response)
}

fn signed_out(params: &Params, target: Option<Target>) -> Response {
    match target {
        Some(Target { uri, .. }) => {
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
