//! Passkeys at sign-in: `POST /passkeys/options` (a challenge for
//! `navigator.credentials.get()`, JSON) and `POST /login/passkey` (the browser's answer,
//! posted as a form with the authorization request). A passkey signs in alone, or is the
//! second step after a password. A refused answer counts as a failed sign-in in the login
//! throttle, against the passkey's owner (or, for an unknown passkey, no user at all).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cookies::{
    check_csrf, check_origin, cookies, read_cookie, set_cookie, set_device_cookie, signed_in,
};
use super::login::login_page;
use super::request::{Refusal, internal, parse_request, read_post};
use super::{proceed, second};
use crate::domain::browser::BrowserSession;
use crate::domain::factors::amr;
use crate::domain::factors::passkeys::PasskeyError;
use crate::domain::signin::SignIn;
use crate::error::OAuthError;
use crate::http::Peer;
use crate::http::error::HttpError;

/// The longest answer read (an RSA key's attestation is a few KiB).
const MAX_ANSWER: usize = 64 * 1024;
/// The throttle's name for answers naming no registered passkey: no username can be this
/// (usernames have no spaces), so nobody's account is charged for them.
const UNKNOWN_PASSKEY: &str = "unknown passkey";

/// `POST /passkeys/options`: a new sign-in challenge, as the options JSON.
pub(in crate::http) async fn options(State(signin): State<SignIn>, headers: HeaderMap) -> Response {
    if check_origin(&signin, &headers).is_err() {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the request comes from another origin",
        )
        .into_response();
    }
    let options = signin.factors.begin_authentication().await;
    options_response(options)
}

/// The options JSON (uncached), or the error a ceremony could not start with.
pub(in crate::http) fn options_response(options: Result<String, PasskeyError>) -> Response {
    match options {
        // As WebAuthn's `CredentialCreationOptions`/`CredentialRequestOptions` hold them.
        Ok(json) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!(r#"{{"publicKey":{json}}}"#),
        )
            .into_response(),
        Err(PasskeyError::Store(e)) => {
            HttpError::internal(crate::http::error::Surface::Admin, &e).into_response()
        }
        Err(_) => HttpError::new(
            StatusCode::NOT_FOUND,
            "passkeys_unavailable",
            "passkeys need an issuer whose host is a domain name",
        )
        .into_response(),
    }
}

/// What a passkey's answer came to.
pub(in crate::http) enum PasskeySignedIn {
    /// The browser session (new, or the password's with the passkey added) and headers.
    Done(BrowserSession, HeaderMap),
    /// Refused: the status, the text to show, headers (`Retry-After` when throttled).
    Again(StatusCode, String, HeaderMap),
}

fn refusal_text(e: &PasskeyError) -> &'static str {
    match e {
        PasskeyError::Malformed => "The passkey's answer could not be read. Try again.",
        PasskeyError::UnknownChallenge => {
            "This passkey request has expired or was used already. Try again."
        }
        PasskeyError::UnknownPasskey => "This passkey is not registered here.",
        PasskeyError::Cloned => {
            "This passkey was refused: its counter went back, as a copied authenticator's does."
        }
        PasskeyError::Unavailable => "Passkeys cannot be used with this server.",
        PasskeyError::Refused | PasskeyError::Store(_) => "This passkey's answer was refused.",
    }
}

/// Checks a passkey's answer (the `credential` field), throttled like a password, and
/// signs the browser in: the passkey as the second step of the browser session's
/// password sign-in of the same user, else a new session (`swk`, with `mfa` when the
/// authenticator verified the user).
pub(in crate::http) async fn passkey_sign_in(
    signin: &SignIn,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
    answer: &str,
) -> Result<PasskeySignedIn, Refusal> {
    if answer.is_empty() || answer.len() > MAX_ANSWER {
        let text = "The passkey's answer is missing. Try again.".to_string();
        return Ok(PasskeySignedIn::Again(
            StatusCode::BAD_REQUEST,
            text,
            HeaderMap::new(),
        ));
    }
    let factors = &signin.factors;
    let owner = factors
        .passkey_owner(answer.as_bytes())
        .await
        .map_err(internal)?;
    let owner = match owner {
        Some(id) => signin.users.user(&id).await.map_err(internal)?,
        None => None,
    };
    let name = owner
        .as_ref()
        .map_or(UNKNOWN_PASSKEY, |u| u.username.as_str());
    let device = read_cookie(headers, cookies(signin).device);
    let check = async {
        match factors.finish_authentication(answer.as_bytes()).await {
            Ok(a) => Ok(a),
            Err(PasskeyError::Store(e)) => Err(OAuthError::Internal(e.into())),
            Err(e) => {
                if matches!(e, PasskeyError::Cloned) {
                    tracing::warn!(user = name, "passkey refused: its sign counter went back");
                }
                Err(OAuthError::InvalidGrant(refusal_text(&e)))
            }
        }
    };
    let asserted = match signin.throttled_login(name, peer, device, check).await {
        Ok(Ok(a)) => a,
        Ok(Err(OAuthError::InvalidGrant(text))) => {
            let status = StatusCode::BAD_REQUEST;
            return Ok(PasskeySignedIn::Again(
                status,
                text.into(),
                HeaderMap::new(),
            ));
        }
        Ok(Err(e)) => return Err(internal(e)),
        Err(throttled) => {
            signin.metrics.throttled("login");
            let retry_after = throttled.retry_after;
            let mut extra = HeaderMap::new();
            extra.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            let text = format!("Too many attempts. Try again in {retry_after} seconds.");
            return Ok(PasskeySignedIn::Again(
                StatusCode::TOO_MANY_REQUESTS,
                text,
                extra,
            ));
        }
    };
    let user = signin
        .users
        .user(&asserted.user_id)
        .await
        .map_err(internal)?
        .filter(|u| !u.disabled);
    let Some(user) = user else {
        let text = "This passkey's account cannot sign in.".to_string();
        return Ok(PasskeySignedIn::Again(
            StatusCode::BAD_REQUEST,
            text,
            HeaderMap::new(),
        ));
    };
    let c = cookies(signin);
    let token = read_cookie(headers, c.session);
    if let (Some(session), Some(token)) = (signed_in(signin, headers).await?, token) {
        let second = session.user_id == user.id
            && !amr::is_mfa(&session.amr)
            && (amr::has_password(&session.amr) || asserted.user_verified);
        if second {
            let b = &signin.browser;
            let session = b.add_second_factor(token, &session, amr::SWK).await;
            return Ok(PasskeySignedIn::Done(
                session.map_err(internal)?,
                HeaderMap::new(),
            ));
        }
    }
    let methods = amr::passkey_alone(asserted.user_verified);
    let token = signin
        .browser
        .start_browser_session(&user.id, token, &methods)
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
        amr: methods,
    };
    Ok(PasskeySignedIn::Done(session, extra))
}

/// `POST /login/passkey`: a passkey's answer on the login page or the second step.
pub(super) async fn login_passkey(
    State(signin): State<SignIn>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        check_origin(&signin, &headers)?;
        let params = read_post(&signin, &headers, body).await?;
        check_csrf(&signin, &headers, &params)?;
        let req = parse_request(&signin, &params).await?;
        let answer = params.get("credential").unwrap_or("");
        match passkey_sign_in(&signin, &headers, peer, answer).await? {
            PasskeySignedIn::Done(session, extra) => {
                Ok(proceed(&signin, &req, &headers, &session, extra).await)
            }
            PasskeySignedIn::Again(status, text, extra) => {
                match signed_in(&signin, &headers).await? {
                    Some(session) => {
                        let user_id = &session.user_id;
                        second::second_page(&signin, &req, &headers, user_id, Some(&text), extra)
                            .await
                            .map(|mut r| {
                                *r.status_mut() = status;
                                r
                            })
                    }
                    None => Ok(login_page(
                        &signin,
                        &req,
                        &headers,
                        status,
                        "",
                        Some(&text),
                        extra,
                    )),
                }
            }
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}
