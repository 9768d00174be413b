//! `/account`: the signed-in user's own page (a browser session at tessera): their second
//! factors, recovery codes and sessions. It signs in with the login page's password check
//! and, when the user has a second factor, the same second step. Every change is a form
//! posted with the CSRF token; no script.

mod pages;
mod passkeys;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::authorize::cookies::{
    check_csrf, check_origin, cookies, csrf_token, read_cookie, signed_in,
};
use super::authorize::login::{SignedIn, password_sign_in};
use super::authorize::request::{Refusal, internal, read_post};
use super::authorize::second::{Verified, offer_passkey, verify_second_factor};
use super::form::Params;
use super::{Peer, pages as html};
use crate::domain::Core;
use crate::domain::factors::{FactorError, amr};
use crate::domain::queries::User;
use crate::domain::signin::SignIn;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/account", get(account))
        .route("/account/login", post(login))
        .route("/account/mfa", post(second_factor))
        .route("/account/totp", post(begin_totp))
        .route("/account/totp/confirm", post(confirm_totp))
        .route("/account/recovery-codes", post(recovery_codes))
        .route("/account/factors/remove", post(remove_factor))
        .route("/account/passkeys/options", post(passkeys::options))
        .route("/account/passkeys", post(passkeys::add))
        .route("/account/login/passkey", post(passkeys::login))
}

/// Where a browser stands with the account page.
enum Gate {
    /// Not signed in: the password form.
    Login,
    /// Signed in with a password, but the user has a second factor: the second step.
    Second,
    /// Signed in as the account page requires.
    In(User, String),
}

async fn gate(signin: &SignIn, headers: &HeaderMap) -> Result<Gate, Refusal> {
    let Some(session) = signed_in(signin, headers).await? else {
        return Ok(Gate::Login);
    };
    let Some(user) = signin
        .users
        .user(&session.user_id)
        .await
        .map_err(internal)?
    else {
        return Ok(Gate::Login);
    };
    if !amr::is_mfa(&session.amr)
        && signin
            .factors
            .has_second_factor(&user.id)
            .await
            .map_err(internal)?
    {
        return Ok(Gate::Second);
    }
    let token = read_cookie(headers, cookies(signin).session)
        .unwrap_or_default()
        .to_string();
    Ok(Gate::In(user, token))
}

fn respond(status: StatusCode, page: maud::Markup, extra: HeaderMap) -> Response {
    html::respond_own(status, page, extra)
}

fn see_account(extra: HeaderMap) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/account"));
    html::security(h);
    h.extend(extra);
    resp
}

fn login_page(
    signin: &SignIn,
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
    mut extra: HeaderMap,
) -> Response {
    let csrf = csrf_token(signin, headers, &mut extra);
    let passkey = signin
        .factors
        .passkeys_offered()
        .then_some("/account/login/passkey");
    let page = html::login(
        "your account",
        username,
        error,
        &[],
        &csrf,
        "/account/login",
        passkey,
    );
    respond(status, page, extra)
}

async fn second_page(
    signin: &SignIn,
    headers: &HeaderMap,
    error: Option<&str>,
    mut extra: HeaderMap,
) -> Result<Response, Refusal> {
    let csrf = csrf_token(signin, headers, &mut extra);
    let status = match extra.contains_key(header::RETRY_AFTER) {
        true => StatusCode::TOO_MANY_REQUESTS,
        false => StatusCode::OK,
    };
    let passkey = match signed_in(signin, headers).await? {
        Some(s) => offer_passkey(signin, &s.user_id).await?,
        None => false,
    };
    let passkey = passkey.then_some("/account/login/passkey");
    let page = html::second_factor("your account", error, &[], &csrf, "/account/mfa", passkey);
    Ok(respond(status, page, extra))
}

async fn overview(signin: &SignIn, headers: &HeaderMap, user: &User) -> Result<Response, Refusal> {
    let listed = signin.factors.list(&user.id).await.map_err(internal)?;
    let sessions = signin
        .users
        .live_sessions(&user.id)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let mut extra = HeaderMap::new();
    let csrf = csrf_token(signin, headers, &mut extra);
    let o = pages::Overview {
        username: &user.username,
        factors: &listed.factors,
        passkeys: signin
            .factors
            .passkeys_offered()
            .then_some(&listed.passkeys[..]),
        recovery_codes_left: listed.recovery_codes_left,
        sessions: &sessions,
    };
    Ok(respond(StatusCode::OK, pages::account(&o, &csrf), extra))
}

/// Runs a handler's body, answering its refusal as a page.
async fn page(body: impl Future<Output = Result<Response, Refusal>>) -> Response {
    match body.await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn account(State(signin): State<SignIn>, headers: HeaderMap) -> Response {
    page(async {
        match gate(&signin, &headers).await? {
            Gate::Login => Ok(login_page(
                &signin,
                &headers,
                StatusCode::OK,
                "",
                None,
                HeaderMap::new(),
            )),
            Gate::Second => second_page(&signin, &headers, None, HeaderMap::new()).await,
            Gate::In(user, _) => overview(&signin, &headers, &user).await,
        }
    })
    .await
}

/// Reads a form posted from one of tessera's pages: same origin, CSRF token.
async fn read_form(signin: &SignIn, headers: &HeaderMap, body: Body) -> Result<Params, Refusal> {
    check_origin(signin, headers)?;
    let params = read_post(signin, headers, body).await?;
    check_csrf(signin, headers, &params)?;
    Ok(params)
}

async fn login(
    State(signin): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    page(async {
        let mut params = read_form(&signin, &headers, body).await?;
        let username = params.get("username").unwrap_or("").to_string();
        let password = params.take_secret("password");
        match password_sign_in(&signin, &headers, &username, password, peer).await? {
            SignedIn::Done(_, extra) => Ok(see_account(extra)),
            SignedIn::Again(status, username, error, extra) => Ok(login_page(
                &signin,
                &headers,
                status,
                &username,
                Some(&error),
                extra,
            )),
        }
    })
    .await
}

async fn second_factor(
    State(signin): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    page(async {
        let params = read_form(&signin, &headers, body).await?;
        let Some(session) = signed_in(&signin, &headers).await? else {
            return Ok(see_account(HeaderMap::new()));
        };
        let token = read_cookie(&headers, cookies(&signin).session).unwrap_or_default();
        let code = params.get("code").unwrap_or("");
        match verify_second_factor(&signin, &headers, peer, token, &session, code).await? {
            Verified::Yes(_) => Ok(see_account(HeaderMap::new())),
            Verified::No(text, extra) => second_page(&signin, &headers, Some(&text), extra).await,
        }
    })
    .await
}

/// The signed-in user a change is made for; anything else goes back to `/account`.
async fn signed_in_user(
    signin: &SignIn,
    headers: &HeaderMap,
) -> Result<Result<(User, String), Response>, Refusal> {
    Ok(match gate(signin, headers).await? {
        Gate::In(user, token) => Ok((user, token)),
        _ => Err(see_account(HeaderMap::new())),
    })
}

fn factor_error(e: FactorError) -> Result<Response, Refusal> {
    match e {
        FactorError::NotFound => Ok(see_account(HeaderMap::new())),
        e => Err(internal(crate::error::OAuthError::Internal(e.into()))),
    }
}

async fn begin_totp(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    page(async {
        read_form(&signin, &headers, body).await?;
        let (user, _) = match signed_in_user(&signin, &headers).await? {
            Ok(u) => u,
            Err(r) => return Ok(r),
        };
        let enrollment = match signin.factors.begin_totp(&user.id, &user.username).await {
            Ok(e) => e,
            Err(e) => return factor_error(e),
        };
        let mut extra = HeaderMap::new();
        let csrf = csrf_token(&signin, &headers, &mut extra);
        Ok(respond(
            StatusCode::OK,
            pages::enroll(&enrollment, None, &csrf),
            extra,
        ))
    })
    .await
}

async fn confirm_totp(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    page(async {
        let params = read_form(&signin, &headers, body).await?;
        let (user, token) = match signed_in_user(&signin, &headers).await? {
            Ok(u) => u,
            Err(r) => return Ok(r),
        };
        let factor = params.get("factor").unwrap_or("");
        let code = params.get("code").unwrap_or("");
        let name = params.get("name").unwrap_or("");
        let f = &signin.factors;
        match f
            .confirm_totp(&user.id, &user.username, factor, code, name, Some(&token))
            .await
        {
            Ok(true) => {
                // The first code proved the factor: this session has it now.
                if let Some(session) = signed_in(&signin, &headers).await? {
                    let b = &signin.browser;
                    let added = b.add_second_factor(&token, &session, amr::OTP).await;
                    added.map_err(internal)?;
                }
                Ok(see_account(HeaderMap::new()))
            }
            Ok(false) => {
                let enrollment = match f.enrollment(&user.id, &user.username, factor).await {
                    Ok(e) => e,
                    Err(e) => return factor_error(e),
                };
                let mut extra = HeaderMap::new();
                let csrf = csrf_token(&signin, &headers, &mut extra);
                let error = Some("That code is not right. Enter the code the app shows now.");
                Ok(respond(
                    StatusCode::OK,
                    pages::enroll(&enrollment, error, &csrf),
                    extra,
                ))
            }
            Err(e) => factor_error(e),
        }
    })
    .await
}

async fn recovery_codes(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    page(async {
        read_form(&signin, &headers, body).await?;
        let (user, token) = match signed_in_user(&signin, &headers).await? {
            Ok(u) => u,
            Err(r) => return Ok(r),
        };
        match signin
            .factors
            .new_recovery_codes(&user.id, Some(&token))
            .await
        {
            Ok(codes) => Ok(respond(
                StatusCode::OK,
                pages::recovery_codes(&codes),
                HeaderMap::new(),
            )),
            Err(e) => factor_error(e),
        }
    })
    .await
}

async fn remove_factor(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    page(async {
        let params = read_form(&signin, &headers, body).await?;
        let (user, token) = match signed_in_user(&signin, &headers).await? {
            Ok(u) => u,
            Err(r) => return Ok(r),
        };
        let factor = params.get("factor").unwrap_or("");
        match signin.factors.remove(&user.id, factor, Some(&token)).await {
            Ok(()) => overview(&signin, &headers, &user).await,
            Err(e) => factor_error(e),
        }
    })
    .await
}
