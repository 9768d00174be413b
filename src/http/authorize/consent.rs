//! `POST /consent`: the user's answer to the consent page.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies::{check_csrf, signed_in};
use super::issue;
use super::login::login_page;
use super::request::{Refusal, bad_request, internal, parse_request, read_post};
use super::second::second_step;
use crate::domain::signin::SignIn;

pub(super) async fn consent(
    State(signin): State<SignIn>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let params = read_post(&signin, &headers, body).await?;
        let req = parse_request(&signin, &params).await?;
        check_csrf(&signin, &headers, &params)?;
        let Some(session) = signed_in(&signin, &headers).await? else {
            return Ok(login_page(
                &signin,
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
                // A crafted answer must not skip the second step.
                let no_extra = HeaderMap::new();
                if let Some(page) =
                    second_step(&signin, &req, &headers, &session, &no_extra).await?
                {
                    return Ok(page);
                }
                signin
                    .browser
                    .remember_consent(&session.user_id, &req.client.id, &req.scope)
                    .await
                    .map_err(internal)?;
                let user = signin
                    .users
                    .user(&session.user_id)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| bad_request("The account no longer exists."))?;
                Ok(issue(
                    &signin,
                    &req,
                    &session,
                    user.authz_version,
                    HeaderMap::new(),
                )
                .await)
            }
            Some("deny") => Err::<Response, Refusal>(req.error(
                &signin,
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
