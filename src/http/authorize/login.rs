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
    let page = pages::login(app_name(&req.client), username, error, &req.carried, &csrf);
    pages::respond(status, page, req.form_action().as_deref(), extra)
}

const WRONG: &str = "Incorrect username or password.";

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
        let (Some(password), false) = (password, username.is_empty()) else {
            let page = login_page(
                &signin,
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
                &signin,
                &req,
                &headers,
                StatusCode::OK,
                "",
                Some(WRONG),
                HeaderMap::new(),
            ));
        }
        Ok::<Response, Refusal>(sign_in(&signin, &req, &headers, &username, password, peer).await)
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn sign_in(
    signin: &SignIn,
    req: &AuthzRequest,
    headers: &HeaderMap,
    username: &str,
    password: SecretString,
    peer: std::net::IpAddr,
) -> Response {
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
            return login_page(
                signin,
                req,
                headers,
                StatusCode::TOO_MANY_REQUESTS,
                username,
                Some(&text),
                extra,
            );
        }
    };
    let user = match result {
        Ok(u) => u,
        Err(OAuthError::InvalidGrant(_)) => {
            return login_page(
                signin,
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
    let c = cookies(signin);
    let previous = read_cookie(headers, c.session);
    let token = match signin
        .browser
        .start_browser_session(&user.id, previous)
        .await
    {
        Ok(t) => t,
        Err(e) => return internal(e).into_response(),
    };
    let mut extra = HeaderMap::new();
    set_cookie(
        &mut extra,
        format!("{}={token}{}; SameSite=Lax", c.session, c.attributes),
    );
    set_device_cookie(signin, &mut extra, &user.username);
    proceed(signin, req, headers, &user.id, signin.clock.now(), extra).await
}
