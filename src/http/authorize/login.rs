//! The login page and `POST /login`: checks the password and starts a browser session.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use super::cookies::{
    check_csrf, check_origin, cookies, csrf_token, read_cookie, set_cookie, set_device_cookie,
};
use super::request::{AuthzRequest, Refusal, internal, parse_request, read_post};
use super::{app_name, proceed};
use crate::domain::browser::BrowserSession;
use crate::domain::factors::amr;
use crate::domain::signin::SignIn;
use crate::domain::throttle::Why;
use crate::error::OAuthError;
use crate::http::{Peer, form, pages};

pub(super) fn login_page(
    signin: &SignIn,
    req: &AuthzRequest,
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
        .then_some("/login/passkey");
    let page = pages::login(
        app_name(&req.client),
        username,
        error,
        &req.carried,
        &csrf,
        "/login",
        passkey,
    );
    pages::respond(status, page, req.form_action().as_deref(), extra)
}

pub(in crate::http) const WRONG: &str = "Incorrect username or password.";

pub(super) async fn login(
    State(signin): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        check_origin(&signin, &headers)?;
        let mut params = read_post(&signin, &headers, body).await?;
        let req = parse_request(&signin, &params).await?;
        check_csrf(&signin, &headers, &params)?;
        let username = params.get("username").unwrap_or("").to_string();
        let password = params.take_secret("password");
        let page = |status, username: &str, error: &str, extra| {
            login_page(
                &signin,
                &req,
                &headers,
                status,
                username,
                Some(error),
                extra,
            )
        };
        match password_sign_in(&signin, &headers, &username, password, peer).await? {
            SignedIn::Done(session, extra) => {
                Ok(proceed(&signin, &req, &headers, &session, extra).await)
            }
            SignedIn::Again(status, username, error, extra) => {
                Ok::<Response, Refusal>(page(status, &username, &error, extra))
            }
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

/// What a password sign-in came to.
pub(in crate::http) enum SignedIn {
    /// A browser session and the headers that set its cookie.
    Done(BrowserSession, HeaderMap),
    /// Show the form again: the status, the username to fill in, the error, headers.
    Again(StatusCode, String, String, HeaderMap),
}

/// Checks a username and password, throttled, and starts a browser session with `amr`
/// `pwd`: what `/login` and the account page's sign-in share.
pub(in crate::http) async fn password_sign_in(
    signin: &SignIn,
    headers: &HeaderMap,
    username: &str,
    password: Option<SecretString>,
    peer: std::net::IpAddr,
) -> Result<SignedIn, Refusal> {
    let again = |status, username: &str, error: &str, extra| {
        Ok(SignedIn::Again(
            status,
            username.to_string(),
            error.to_string(),
            extra,
        ))
    };
    let (Some(password), false) = (password, username.is_empty()) else {
        let error = "Enter your username and password.";
        return again(StatusCode::BAD_REQUEST, username, error, HeaderMap::new());
    };
    if form::require_identifier("username", username).is_err() {
        return again(StatusCode::OK, "", WRONG, HeaderMap::new());
    }
    let device = read_cookie(headers, cookies(signin).device);
    let check = signin.check_password(username, password);
    let result = match signin.throttled_login(username, peer, device, check).await {
        Ok(result) => result,
        Err(throttled) => {
            signin.metrics.throttled("login");
            let retry_after = throttled.retry_after;
            let mut extra = HeaderMap::new();
            extra.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            let text = match throttled.why {
                Why::InProgress => {
                    format!("Too many sign-ins in progress. Try again in {retry_after} seconds.")
                }
                _ => format!("Too many attempts. Try again in {retry_after} seconds."),
            };
            return again(StatusCode::TOO_MANY_REQUESTS, username, &text, extra);
        }
    };
    let user = match result {
        Ok(u) => u,
        Err(OAuthError::InvalidGrant(_)) => {
            return again(StatusCode::OK, username, WRONG, HeaderMap::new());
        }
        Err(e) => return Err(internal(e)),
    };
    let c = cookies(signin);
    let previous = read_cookie(headers, c.session);
    let token = signin
        .browser
        .start_browser_session(&user.id, previous, amr::PWD)
        .await
        .map_err(internal)?;
    let mut extra = HeaderMap::new();
    set_cookie(
        &mut extra,
        format!("{}={token}{}; SameSite=Lax", c.session, c.attributes),
    );
    set_device_cookie(signin, &mut extra, &user.username);
    let session = BrowserSession {
        user_id: user.id,
        auth_time: signin.clock.now(),
        amr: amr::PWD.into(),
    };
    Ok(SignedIn::Done(session, extra))
}
