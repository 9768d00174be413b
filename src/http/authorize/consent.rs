//! `POST /consent`: the user's answer to the consent page.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies::{check_csrf, signed_in};
use super::issue;
use super::login::login_page;
use super::request::{Refusal, bad_request, internal, parse_request, read_post};
use crate::domain::Core;

pub(super) async fn consent(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let params = read_post(&core, &headers, body).await?;
        let req = parse_request(&core, &params).await?;
        check_csrf(&core, &headers, &params)?;
        let Some(session) = signed_in(&core, &headers).await? else {
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
                core.browser
                    .remember_consent(&session.user_id, &req.client.id, &req.scope)
                    .await
                    .map_err(internal)?;
                let user = core
                    .users
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
