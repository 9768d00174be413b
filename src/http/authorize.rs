//! `GET /authorize` (RFC 6749 §4.1, RFC 7636, RFC 9207), the login and consent
//! forms behind it, and RP-initiated logout (`GET /end_session`).
//!
//! The authorization request travels through the forms as hidden fields and is
//! validated again on every step; nothing about it is kept on the server before a
//! code is issued. An unknown client or redirect URI is an error page, never a
//! redirect; every other error goes back to the app (§4.1.2.1).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;

use super::Peer;
use super::form::{self, Params};
use super::pages;
use crate::crypto::{self, ct_eq};
use crate::domain::Core;
use crate::domain::clients::Client;
use crate::domain::codes::{CodeGrant, is_pkce_string};
use crate::domain::grants::{grant_scope, parse_scope};
use crate::domain::redirects;
use crate::error::OAuthError;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/login", post(login))
        .route("/consent", post(consent))
        .route("/end_session", get(end_session))
}

/// The parameters of an authorization request that the forms carry.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

/// A valid authorization request.
struct AuthzRequest {
    client: Arc<Client>,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    code_challenge: String,
    nonce: Option<String>,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    max_age: Option<i64>,
    carried: Vec<(&'static str, String)>,
}

/// Why a request is refused: on a page (the app cannot be trusted with it) or back at the app.
enum Refusal {
    Page(StatusCode, &'static str, String),
    Redirect(Box<Response>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Page(status, title, text) => {
                pages::respond(status, pages::message(title, &text), None, HeaderMap::new())
            }
            Self::Redirect(r) => *r,
        }
    }
}

fn bad_request(text: impl Into<String>) -> Refusal {
    Refusal::Page(
        StatusCode::BAD_REQUEST,
        "This sign-in link does not work",
        text.into(),
    )
}

fn internal(e: impl Into<OAuthError>) -> Refusal {
    let e: OAuthError = e.into();
    let unavailable = match &e {
        OAuthError::Internal(inner) => {
            matches!(
                crate::error::log_internal(inner.as_ref()),
                crate::error::Cause::Unavailable
            )
        }
        _ => false,
    };
    let busy = matches!(e, OAuthError::Busy { .. }) || unavailable;
    if busy {
        Refusal::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "tessera is busy right now. Try again in a moment.".into(),
        )
    } else {
        Refusal::Page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "tessera could not complete the sign-in. Try again later.".into(),
        )
    }
}

/// A 303 to `uri` with `params` added, carrying the page headers.
fn redirect(uri: &str, params: &[(&str, &str)], mut extra: HeaderMap) -> Response {
    let location = redirects::with_query(uri, params);
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    pages::security(h);
    h.extend(extra.drain());
    resp
}

impl AuthzRequest {
    /// Back to the app with an RFC 6749 §4.1.2.1 error (and `iss`, RFC 9207).
    fn error(&self, core: &Core, code: &'static str, description: &str) -> Refusal {
        let mut params = vec![
            ("error", code),
            ("error_description", description),
            ("iss", core.cfg.issuer.as_str()),
        ];
        if let Some(s) = &self.state {
            params.push(("state", s.as_str()));
        }
        Refusal::Redirect(Box::new(redirect(
            &self.redirect_uri,
            &params,
            HeaderMap::new(),
        )))
    }

    fn form_action(&self) -> Option<String> {
        redirects::origin_of(&self.redirect_uri)
    }
}

async fn parse_request(core: &Core, params: &Params) -> Result<AuthzRequest, Refusal> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| bad_request("The app did not say who it is (client_id is missing)."))?;
    let client = core
        .clients
        .get(&core.db, client_id)
        .await
        .map_err(internal)?
        .filter(|c| c.allows("authorization_code"))
        .ok_or_else(|| bad_request("The app that sent you here is not registered with tessera."))?;
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|r| redirects::matches(&client.redirect_uris, r))
        .ok_or_else(|| {
            bad_request("The app asked to send you to an address it has not registered.")
        })?
        .to_string();
    let mut req = AuthzRequest {
        client,
        redirect_uri,
        state: params.get("state").map(str::to_string),
        scope: String::new(),
        code_challenge: String::new(),
        nonce: params.get("nonce").map(str::to_string),
        prompt_none: false,
        prompt_login: false,
        prompt_consent: false,
        max_age: None,
        carried: CARRIED
            .iter()
            .filter_map(|k| params.get(k).map(|v| (*k, v.to_string())))
            .collect(),
    };
    match params.get("response_type") {
        None => return Err(req.error(core, "invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(req.error(
                core,
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let Some(challenge) = params.get("code_challenge") else {
        return Err(req.error(
            core,
            "invalid_request",
            "PKCE is required: send code_challenge",
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(req.error(
            core,
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if challenge.len() != 43 || !is_pkce_string(challenge) {
        return Err(req.error(
            core,
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier",
        ));
    }
    req.code_challenge = challenge.to_string();
    let scope = parse_scope(params.get("scope"))
        .and_then(|s| grant_scope(s, &req.client.scopes))
        .map_err(|e| match e {
            OAuthError::InvalidScope(d) => req.error(core, "invalid_scope", &d),
            _ => req.error(core, "invalid_scope", "invalid scope"),
        })?;
    req.scope = scope.join(" ");
    if let Some(prompt) = params.get("prompt") {
        for p in prompt.split(' ').filter(|p| !p.is_empty()) {
            match p {
                "none" => req.prompt_none = true,
                "login" | "select_account" => req.prompt_login = true,
                "consent" => req.prompt_consent = true,
                _ => {
                    return Err(req.error(core, "invalid_request", "unknown prompt value"));
                }
            }
        }
        if req.prompt_none && (req.prompt_login || req.prompt_consent) {
            return Err(req.error(core, "invalid_request", "prompt=none stands alone"));
        }
    }
    if let Some(max_age) = params.get("max_age") {
        let parsed = max_age.parse::<i64>().ok().filter(|m| *m >= 0);
        let Some(m) = parsed else {
            return Err(req.error(
                core,
                "invalid_request",
                "max_age must be a non-negative integer",
            ));
        };
        req.max_age = Some(m);
    }
    Ok(req)
}

/// The names of tessera's cookies: `__Host-` prefixed and `Secure` under an https issuer.
struct Cookies {
    session: &'static str,
    csrf: &'static str,
    attributes: &'static str,
}

fn cookies(core: &Core) -> Cookies {
    if core.cfg.issuer.starts_with("https://") {
        Cookies {
            session: "__Host-tessera_session",
            csrf: "__Host-tessera_csrf",
            attributes: "; Path=/; HttpOnly; Secure",
        }
    } else {
        Cookies {
            session: "tessera_session",
            csrf: "tessera_csrf",
            attributes: "; Path=/; HttpOnly",
        }
    }
}

fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(extra: &mut HeaderMap, cookie: String) {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        extra.append(header::SET_COOKIE, v);
    }
}

/// The CSRF token of this browser (double-submit cookie), set if it has none.
fn csrf_token(core: &Core, headers: &HeaderMap, extra: &mut HeaderMap) -> String {
    let c = cookies(core);
    if let Some(t) = read_cookie(headers, c.csrf).filter(|t| t.len() == 43) {
        return t.to_string();
    }
    let token = crypto::random_token();
    set_cookie(
        extra,
        format!("{}={token}{}; SameSite=Strict", c.csrf, c.attributes),
    );
    token
}

fn check_csrf(core: &Core, headers: &HeaderMap, params: &Params) -> Result<(), Refusal> {
    let cookie = read_cookie(headers, cookies(core).csrf);
    match (cookie, params.get("csrf")) {
        (Some(c), Some(p)) if ct_eq(c.as_bytes(), p.as_bytes()) => Ok(()),
        _ => Err(Refusal::Page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the app and sign in again.".into(),
        )),
    }
}

fn app_name(client: &Client) -> &str {
    &client.id
}

fn login_page(
    core: &Core,
    req: &AuthzRequest,
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
    mut extra: HeaderMap,
) -> Response {
    let csrf = csrf_token(core, headers, &mut extra);
    let page = pages::login(app_name(&req.client), username, error, &req.carried, &csrf);
    pages::respond(status, page, req.form_action().as_deref(), extra)
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

async fn start(core: &Core, headers: &HeaderMap, params: &Params) -> Result<Response, Response> {
    let req = parse_request(core, params)
        .await
        .map_err(IntoResponse::into_response)?;
    let session = match read_cookie(headers, cookies(core).session) {
        Some(token) => core
            .browser_session(token)
            .await
            .map_err(|e| internal(e).into_response())?,
        None => None,
    };
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

async fn read_post(core: &Core, headers: &HeaderMap, body: Body) -> Result<Params, Refusal> {
    form::read_form(headers, body, core.cfg.request_timeout / 2)
        .await
        .map_err(|_| bad_request("The form could not be read."))
}

const WRONG: &str = "Incorrect username or password.";

async fn login(
    State(core): State<Arc<Core>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let mut params = read_post(&core, &headers, body).await?;
        let req = parse_request(&core, &params).await?;
        check_csrf(&core, &headers, &params)?;
        let username = params.get("username").unwrap_or("").to_string();
        let password = params.take_secret("password");
        let (Some(password), false) = (password, username.is_empty()) else {
            let page = login_page(
                &core,
                &req,
                &headers,
                StatusCode::BAD_REQUEST,
                &username,
                Some("Enter your username and password."),
                HeaderMap::new(),
            );
            return Ok(page);
        };
        if form::require_identifier("username", &username).is_err() {
            return Ok(login_page(
                &core,
                &req,
                &headers,
                StatusCode::OK,
                "",
                Some(WRONG),
                HeaderMap::new(),
            ));
        }
        Ok::<Response, Refusal>(sign_in(&core, &req, &headers, &username, password, peer).await)
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn sign_in(
    core: &Core,
    req: &AuthzRequest,
    headers: &HeaderMap,
    username: &str,
    password: SecretString,
    peer: std::net::IpAddr,
) -> Response {
    let attempt = match core.login_attempt(username, &peer.to_string()) {
        Ok(a) => a,
        Err(retry_after) => {
            let mut extra = HeaderMap::new();
            extra.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            let text = format!("Too many attempts. Try again in {retry_after} seconds.");
            return login_page(
                core,
                req,
                headers,
                StatusCode::TOO_MANY_REQUESTS,
                username,
                Some(&text),
                extra,
            );
        }
    };
    let result = core.check_password(username, password).await;
    core.settle_login(attempt, &result).await;
    let user = match result {
        Ok(u) => u,
        Err(OAuthError::InvalidGrant(_)) => {
            return login_page(
                core,
                req,
                headers,
                StatusCode::OK,
                username,
                Some(WRONG),
                HeaderMap::new(),
            );
        }
        Err(e) => return internal(e).into_response(),
    };
    let token = match core.start_browser_session(&user.id).await {
        Ok(t) => t,
        Err(e) => return internal(e).into_response(),
    };
    let c = cookies(core);
    let mut extra = HeaderMap::new();
    set_cookie(
        &mut extra,
        format!("{}={token}{}; SameSite=Lax", c.session, c.attributes),
    );
    proceed(core, req, headers, &user.id, core.clock.now(), extra).await
}

async fn consent(State(core): State<Arc<Core>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let params = read_post(&core, &headers, body).await?;
        let req = parse_request(&core, &params).await?;
        check_csrf(&core, &headers, &params)?;
        let session = match read_cookie(&headers, cookies(&core).session) {
            Some(t) => core.browser_session(t).await.map_err(internal)?,
            None => None,
        };
        let Some(session) = session else {
            return Ok(login_page(
                &core,
                &req,
                &headers,
                StatusCode::OK,
                "",
                None,
                HeaderMap::new(),
            ));
        };
        match params.get("decision") {
            Some("allow") => {
                core.remember_consent(&session.user_id, &req.client.id, &req.scope)
                    .await
                    .map_err(internal)?;
                let user = core
                    .user(&session.user_id)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| bad_request("The account no longer exists."))?;
                Ok(issue(
                    &core,
                    &req,
                    &user.id,
                    user.authz_version,
                    session.auth_time,
                    HeaderMap::new(),
                )
                .await)
            }
            Some("deny") => Err::<Response, Refusal>(req.error(
                &core,
                "access_denied",
                "the user denied access",
            )),
            _ => Err(bad_request("Choose Allow or Deny.")),
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

/// OpenID Connect RP-Initiated Logout 1.0: ends the browser session; redirects
/// only to a `post_logout_redirect_uri` the client registered.
async fn end_session(
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
