//! Passkeys on the account page: `POST /account/passkeys/options` (a registration
//! challenge, JSON), `POST /account/passkeys` (the browser's answer and a name: the
//! passkey is added, a credential change) and `POST /account/login/passkey` (signing in to
//! the account page, or its second step, with a passkey). Both answer with the account page
//! itself.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::authorize::cookies::{check_csrf, check_origin, signed_in};
use super::super::authorize::passkey::{PasskeySignedIn, options_response, passkey_sign_in};
use super::super::authorize::request::{internal, read_post};
use super::super::{Peer, pages as html};
use super::{
    Gate, gate, login_page, overview, page, read_form, second_page, see_account, signed_in_user,
};
use crate::domain::factors::amr;
use crate::domain::factors::passkeys::PasskeyError;
use crate::domain::signin::SignIn;
use crate::http::error::HttpError;

/// `POST /account/passkeys/options`: a registration challenge for the signed-in user.
pub(super) async fn options(
    State(signin): State<SignIn>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let checked = async {
        check_origin(&signin, &headers).ok()?;
        let params = read_post(&signin, &headers, body).await.ok()?;
        check_csrf(&signin, &headers, &params).ok()
    };
    if checked.await.is_none() {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the CSRF token is missing or wrong, or the request comes from another origin",
        )
        .into_response();
    }
    let user = match gate(&signin, &headers).await {
        Ok(Gate::In(user, _)) => user,
        Ok(_) => {
            return HttpError::new(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "sign in on the account page first",
            )
            .into_response();
        }
        Err(r) => return r.into_response(),
    };
    options_response(
        signin
            .factors
            .begin_registration(&user.id, &user.username)
            .await,
    )
}

fn not_added(e: &PasskeyError) -> &'static str {
    match e {
        PasskeyError::Malformed => "The browser's answer could not be read.",
        PasskeyError::UnknownChallenge => "The request expired or was used already.",
        PasskeyError::Unavailable => "Passkeys cannot be used with this server.",
        _ => "The browser's answer was refused (or this passkey is registered already).",
    }
}

/// `POST /account/passkeys`: adds the passkey the browser just created.
pub(super) async fn add(State(signin): State<SignIn>, headers: HeaderMap, body: Body) -> Response {
    page(async {
        let params = read_form(&signin, &headers, body).await?;
        let (user, token) = match signed_in_user(&signin, &headers).await? {
            Ok(u) => u,
            Err(r) => return Ok(r),
        };
        let answer = params.get("credential").unwrap_or("");
        let name = params.get("name").unwrap_or("");
        let f = &signin.factors;
        match f
            .finish_registration(&user.id, name, answer.as_bytes(), Some(&token))
            .await
        {
            Ok(()) => {
                // Creating it needed the authenticator: this session has the passkey now.
                if let Some(session) = signed_in(&signin, &headers).await? {
                    let b = &signin.browser;
                    let added = b.add_second_factor(&token, &session, amr::SWK).await;
                    added.map_err(internal)?;
                }
                overview(&signin, &headers, &user).await
            }
            Err(PasskeyError::Store(e)) => {
                Err(internal(crate::error::OAuthError::Internal(e.into())))
            }
            Err(e) => Ok(html::respond_own(
                StatusCode::BAD_REQUEST,
                html::message("The passkey was not added", not_added(&e)),
                HeaderMap::new(),
            )),
        }
    })
    .await
}

/// `POST /account/login/passkey`: signs in to the account page with a passkey.
pub(super) async fn login(
    State(signin): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    page(async {
        let params = read_form(&signin, &headers, body).await?;
        let answer = params.get("credential").unwrap_or("");
        match passkey_sign_in(&signin, &headers, peer, answer).await? {
            PasskeySignedIn::Done(session, extra) => {
                // The page itself (not a redirect): the session's cookie is in `extra`.
                let user = signin.users.user(&session.user_id).await;
                let Some(user) = user.map_err(internal)? else {
                    return Ok(see_account(extra));
                };
                let second = !amr::is_mfa(&session.amr)
                    && signin
                        .factors
                        .has_second_factor(&user.id)
                        .await
                        .map_err(internal)?;
                let mut resp = match second {
                    true => second_page(&signin, &headers, None, HeaderMap::new()).await?,
                    false => overview(&signin, &headers, &user).await?,
                };
                for (name, value) in &extra {
                    resp.headers_mut().append(name, value.clone());
                }
                Ok(resp)
            }
            PasskeySignedIn::Again(status, text, extra) => {
                let mut resp = match signed_in(&signin, &headers).await? {
                    Some(_) => second_page(&signin, &headers, Some(&text), extra).await?,
                    None => login_page(&signin, &headers, status, "", Some(&text), extra),
                };
                *resp.status_mut() = status;
                Ok(resp)
            }
        }
    })
    .await
}
