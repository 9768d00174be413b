//! The second step of a sign-in: a code from an authenticator app (or a recovery code,
//! or a passkey: see `passkey.rs`) after the password, when the client requires a second factor or the request asks for
//! one (`acr_values`). A wrong code counts as a failed sign-in in the login throttle.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cookies::{check_csrf, check_origin, cookies, csrf_token, read_cookie, signed_in};
use super::login::login_page;
use super::request::{AuthzRequest, Refusal, internal, parse_request, read_post};
use super::{app_name, proceed};
use crate::domain::browser::BrowserSession;
use crate::domain::factors::amr;
use crate::domain::signin::SignIn;
use crate::error::OAuthError;
use crate::http::{Peer, pages};

/// The second-step page when `req` needs a second factor that `session` lacks; `None`
/// when it may go on. Under `prompt=none` it is `interaction_required` at the app.
pub(super) async fn second_step(
    signin: &SignIn,
    req: &AuthzRequest,
    headers: &HeaderMap,
    session: &BrowserSession,
    extra: &HeaderMap,
) -> Result<Option<Response>, Refusal> {
    if !amr::wants_mfa(req.client.require_mfa, req.acr_values.as_deref())
        || amr::is_mfa(&session.amr)
    {
        return Ok(None);
    }
    if req.prompt.none {
        return Err(req.error(
            signin,
            "interaction_required",
            "a second factor is required",
        ));
    }
    let page = second_page(signin, req, headers, &session.user_id, None, extra.clone()).await?;
    Ok(Some(page))
}

pub(super) async fn second_page(
    signin: &SignIn,
    req: &AuthzRequest,
    headers: &HeaderMap,
    user_id: &str,
    error: Option<&str>,
    mut extra: HeaderMap,
) -> Result<Response, Refusal> {
    let has = signin
        .factors
        .has_second_factor(user_id)
        .await
        .map_err(internal)?;
    let app = app_name(&req.client);
    let page = if has {
        let csrf = csrf_token(signin, headers, &mut extra);
        let passkey = offer_passkey(signin, user_id)
            .await?
            .then_some("/login/passkey");
        pages::second_factor(app, error, &req.carried, &csrf, "/login/mfa", passkey)
    } else {
        pages::no_second_factor(app)
    };
    let status = match extra.contains_key(header::RETRY_AFTER) {
        true => StatusCode::TOO_MANY_REQUESTS,
        false => StatusCode::OK,
    };
    Ok(pages::respond(
        status,
        page,
        req.form_action().as_deref(),
        extra,
    ))
}

/// Whether the second step offers the user a passkey: they have one, and passkeys work here.
pub(in crate::http) async fn offer_passkey(
    signin: &SignIn,
    user_id: &str,
) -> Result<bool, Refusal> {
    let f = &signin.factors;
    Ok(f.passkeys_offered() && !f.passkeys(user_id).await.map_err(internal)?.is_empty())
}

/// `POST /login/mfa`: the code of the second step.
pub(super) async fn login_mfa(
    State(signin): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        check_origin(&signin, &headers)?;
        let params = read_post(&signin, &headers, body).await?;
        let req = parse_request(&signin, &params).await?;
        check_csrf(&signin, &headers, &params)?;
        let token = read_cookie(&headers, cookies(&signin).session).unwrap_or("");
        let Some(session) = signed_in(&signin, &headers).await? else {
            let page = login_page(
                &signin,
                &req,
                &headers,
                StatusCode::OK,
                "",
                None,
                HeaderMap::new(),
            );
            return Ok(page);
        };
        let code = params.get("code").unwrap_or("");
        match verify_second_factor(&signin, &headers, peer, token, &session, code).await? {
            Verified::Yes(session) => {
                Ok(proceed(&signin, &req, &headers, &session, HeaderMap::new()).await)
            }
            Verified::No(text, extra) => {
                second_page(
                    &signin,
                    &req,
                    &headers,
                    &session.user_id,
                    Some(&text),
                    extra,
                )
                .await
            }
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

/// What a second-factor code came to.
pub(in crate::http) enum Verified {
    /// The session, now with the code's method and `mfa` in its `amr`.
    Yes(BrowserSession),
    /// Refused: the text to show, and headers (`Retry-After` when throttled).
    No(String, HeaderMap),
}

/// Checks `code` for the user of `session` (the cookie `token`), throttled like a
/// password; on success records the second factor on the browser session.
pub(in crate::http) async fn verify_second_factor(
    signin: &SignIn,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
    token: &str,
    session: &BrowserSession,
    code: &str,
) -> Result<Verified, Refusal> {
    let user = signin
        .users
        .user(&session.user_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal(OAuthError::AccountChanged))?;
    if code.trim().is_empty() || code.len() > 64 {
        return Ok(Verified::No(
            "Enter the code from your authenticator app.".into(),
            HeaderMap::new(),
        ));
    }
    let device = read_cookie(headers, cookies(signin).device);
    let check = async {
        match signin.factors.verify(&user.id, &user.username, code).await {
            Ok(Some(method)) => Ok(method),
            Ok(None) => Err(OAuthError::InvalidGrant("wrong second-factor code")),
            Err(e) => Err(OAuthError::Internal(e.into())),
        }
    };
    let method = match signin
        .throttled_login(&user.username, peer, device, check)
        .await
    {
        Ok(Ok(method)) => method,
        Ok(Err(OAuthError::InvalidGrant(_))) => {
            let text = "That code is not right, or was used already.";
            return Ok(Verified::No(text.into(), HeaderMap::new()));
        }
        Ok(Err(e)) => return Err(internal(e)),
        Err(throttled) => {
            signin.metrics.throttled("login");
            let retry_after = throttled.retry_after;
            let mut extra = HeaderMap::new();
            extra.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            let text = format!("Too many attempts. Try again in {retry_after} seconds.");
            return Ok(Verified::No(text, extra));
        }
    };
    let session = signin
        .browser
        .add_second_factor(token, session, method)
        .await
        .map_err(internal)?;
    Ok(Verified::Yes(session))
}
