//! The authorization request: parsing and validating it, and refusing it on a page or back at the app.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::clients::{Client, GrantType};
use crate::domain::codes::is_pkce_string;
use crate::domain::grants::{grant_scope, parse_scope};
use crate::domain::signin::SignIn;
use crate::domain::signin::rules::{Prompt, parse_max_age};
use crate::domain::{redirects, scopes};
use crate::error::OAuthError;
use crate::http::form::{self, Params};
use crate::http::pages;

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
    // What the user is to be asked must survive the login form (OpenID Connect Core §3.1.2.1),
    // and `prompt` decides whether `offline_access` stands when the consent form is answered.
    "prompt",
    "max_age",
    // Asks for a second factor (`urn:tessera:acr:mfa`); must survive the login form.
    "acr_values",
];

/// A valid authorization request.
pub(super) struct AuthzRequest {
    pub(super) client: Arc<Client>,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) scope: String,
    pub(super) code_challenge: String,
    pub(super) nonce: Option<String>,
    pub(super) prompt: Prompt,
    pub(super) max_age: Option<i64>,
    /// The requested `acr` values, space-separated (voluntary: only MFA is acted on).
    pub(super) acr_values: Option<String>,
    pub(super) carried: Vec<(&'static str, String)>,
}

/// Why a request is refused: on a page (the app cannot be trusted with it) or back at the app.
pub(in crate::http) enum Refusal {
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

pub(in crate::http) fn bad_request(text: impl Into<String>) -> Refusal {
    Refusal::Page(
        StatusCode::BAD_REQUEST,
        "This sign-in link does not work",
        text.into(),
    )
}

pub(in crate::http) fn internal(e: impl Into<OAuthError>) -> Refusal {
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
pub(in crate::http) fn redirect(
    uri: &str,
    params: &[(&str, &str)],
    mut extra: HeaderMap,
) -> Response {
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
    pub(super) fn error(&self, signin: &SignIn, code: &'static str, description: &str) -> Refusal {
        let mut params = vec![
            ("error", code),
            ("error_description", description),
            ("iss", signin.cfg.issuer.as_str()),
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

    pub(super) fn form_action(&self) -> Option<String> {
        redirects::origin_of(&self.redirect_uri)
    }
}

pub(super) async fn parse_request(
    signin: &SignIn,
    params: &Params,
) -> Result<AuthzRequest, Refusal> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| bad_request("The app did not say who it is (client_id is missing)."))?;
    let client = signin
        .clients
        .get(&signin.db, client_id)
        .await
        .map_err(internal)?
        .filter(|c| c.allows(GrantType::AuthorizationCode))
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
        prompt: Prompt::default(),
        max_age: None,
        acr_values: params.get("acr_values").map(str::to_string),
        carried: CARRIED
            .iter()
            .filter_map(|k| params.get(k).map(|v| (*k, v.to_string())))
            .collect(),
    };
    // Request objects are not supported (OpenID Connect Core §6.1, §6.2): refused, never
    // ignored, since the parameters inside one would override those outside.
    if params.get("request").is_some() {
        return Err(req.error(
            signin,
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(req.error(
            signin,
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(req.error(signin, "invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(req.error(
                signin,
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let Some(challenge) = params.get("code_challenge") else {
        return Err(req.error(
            signin,
            "invalid_request",
            "PKCE is required: send code_challenge",
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(req.error(
            signin,
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if challenge.len() != 43 || !is_pkce_string(challenge) {
        return Err(req.error(
            signin,
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier",
        ));
    }
    req.code_challenge = challenge.to_string();
    let scope = parse_scope(params.get("scope"))
        .and_then(|s| grant_scope(s, &req.client.scopes))
        .map_err(|e| match e {
            OAuthError::InvalidScope(d) => req.error(signin, "invalid_scope", &d),
            _ => req.error(signin, "invalid_scope", "invalid scope"),
        })?;
    req.scope = scope.join(" ");
    if let Some(prompt) = params.get("prompt") {
        req.prompt = Prompt::parse(prompt).map_err(|d| req.error(signin, "invalid_request", d))?;
    }
    req.scope = scopes::authorizable(req.client.third_party, &req.scope, req.prompt.consent);
    if let Some(max_age) = params.get("max_age") {
        req.max_age =
            Some(parse_max_age(max_age).map_err(|d| req.error(signin, "invalid_request", d))?);
    }
    Ok(req)
}

pub(in crate::http) async fn read_post(
    signin: &SignIn,
    headers: &HeaderMap,
    body: Body,
) -> Result<Params, Refusal> {
    form::read_form(headers, body, signin.cfg.request_timeout / 2)
        .await
        .map_err(|_| bad_request("The form could not be read."))
}
