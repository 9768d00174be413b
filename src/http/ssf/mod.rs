//! Shared Signals (OpenID SSF 1.0) over HTTP: the transmitter metadata (§7.1), stream
//! management (§8.1: configuration, status, subjects, verification) and the poll
//! endpoint (RFC 8936). Every call but the metadata is authorized by a client token
//! of a client with capability `ssf`, and reaches only that client's streams.

mod poll;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bearer;
use super::error::{HttpError, Surface};
use super::json::JsonBody;
use crate::domain::Core;
use crate::domain::clients::Capability;
use crate::domain::liveness::Live;
use crate::domain::ssf::{POLL, PUSH, Ssf, SsfError, StreamRequest};
use crate::domain::tokens::Tokens;

pub(super) use poll::router as poll_router;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/.well-known/ssf-configuration", get(metadata))
        .route(
            "/ssf/stream",
            get(read_streams)
                .post(create)
                .patch(update)
                .put(replace)
                .delete(delete),
        )
        .route("/ssf/status", get(read_status).post(update_status))
        .route("/ssf/subjects/add", post(add_subject))
        .route("/ssf/subjects/remove", post(remove_subject))
        .route("/ssf/verify", post(verify))
}

/// SSF §7.1 transmitter configuration metadata.
#[derive(Serialize)]
struct Metadata {
    spec_version: &'static str,
    issuer: String,
    jwks_uri: String,
    delivery_methods_supported: [&'static str; 2],
    configuration_endpoint: String,
    status_endpoint: String,
    add_subject_endpoint: String,
    remove_subject_endpoint: String,
    verification_endpoint: String,
    authorization_schemes: [Scheme; 1],
    default_subjects: String,
}

#[derive(Serialize)]
struct Scheme {
    spec_urn: &'static str,
}

async fn metadata(State(ssf): State<Ssf>) -> Response {
    let iss = &ssf.cfg.issuer;
    let doc = Metadata {
        spec_version: "1_0",
        issuer: iss.clone(),
        jwks_uri: format!("{iss}/.well-known/jwks.json"),
        delivery_methods_supported: [PUSH, POLL],
        configuration_endpoint: format!("{iss}/ssf/stream"),
        status_endpoint: format!("{iss}/ssf/status"),
        add_subject_endpoint: format!("{iss}/ssf/subjects/add"),
        remove_subject_endpoint: format!("{iss}/ssf/subjects/remove"),
        verification_endpoint: format!("{iss}/ssf/verify"),
        // Stream management takes an OAuth 2.0 bearer token (client credentials).
        authorization_schemes: [Scheme {
            spec_urn: "urn:ietf:rfc:6749",
        }],
        default_subjects: ssf.cfg.ssf_default_subjects.clone(),
    };
    let mut resp = Json(doc).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// The client a request acts for: a client token (not a user's) of a client that
/// holds capability `ssf`. Rejected with the RFC 6750 answer.
pub(super) struct Receiver(pub(super) String);

impl<S: Send + Sync> FromRequestParts<S> for Receiver
where
    Tokens: FromRef<S>,
    Live: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let caller = bearer::verify(&Tokens::from_ref(state), &parts.headers)?;
        if caller.claims.sid.is_some() {
            return Err(HttpError::insufficient_scope(
                "Shared Signals streams are managed with a client token (client_credentials)",
            ));
        }
        match bearer::client_of(&Live::from_ref(state), &caller).await? {
            Some(c) if c.can(Capability::Ssf) => Ok(Self(c.id.clone())),
            Some(_) => Err(HttpError::insufficient_scope(
                "this client may not manage Shared Signals streams (capability ssf)",
            )),
            None => Err(HttpError::invalid_token("the client is gone")),
        }
    }
}

/// The wire form of a stream operation's refusal (SSF §8.1's status codes).
impl From<SsfError> for HttpError {
    fn from(e: SsfError) -> Self {
        match e {
            SsfError::NotFound => {
                HttpError::new(StatusCode::NOT_FOUND, "not_found", "no such stream")
            }
            SsfError::Invalid(why) => HttpError::invalid_request(why),
            SsfError::TooManySubjects => HttpError::invalid_request(e.to_string()),
            SsfError::TooManyStreams => {
                HttpError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            SsfError::TooSoon => HttpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                e.to_string(),
            )
            .retry_after(crate::domain::ssf::MIN_VERIFICATION_INTERVAL as u64),
            SsfError::Store(e) => HttpError::internal(Surface::Bearer, &e),
        }
    }
}

#[derive(Deserialize)]
struct StreamId {
    stream_id: Option<String>,
}

type Q = Result<Query<StreamId>, axum::extract::rejection::QueryRejection>;

fn stream_id(q: Q, required: bool) -> Result<Option<String>, HttpError> {
    let Ok(Query(q)) = q else {
        return Err(HttpError::invalid_request("malformed query string"));
    };
    if required && q.stream_id.is_none() {
        return Err(HttpError::invalid_request("stream_id is required"));
    }
    Ok(q.stream_id)
}

type Answer = Result<Response, HttpError>;

async fn create(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<StreamRequest>, HttpError>,
) -> Answer {
    let JsonBody(req) = body?;
    let stream = ssf.create(&client, req).await?;
    Ok((StatusCode::CREATED, Json(stream)).into_response())
}

async fn read_streams(State(ssf): State<Ssf>, Receiver(client): Receiver, q: Q) -> Answer {
    Ok(match stream_id(q, false)? {
        Some(id) => Json(ssf.get(&client, &id).await?).into_response(),
        None => Json(ssf.list(&client).await?).into_response(),
    })
}

async fn update(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<StreamRequest>, HttpError>,
) -> Answer {
    change(&ssf, &client, body, false).await
}

async fn replace(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<StreamRequest>, HttpError>,
) -> Answer {
    change(&ssf, &client, body, true).await
}

async fn change(
    ssf: &Ssf,
    client: &str,
    body: Result<JsonBody<StreamRequest>, HttpError>,
    replace: bool,
) -> Answer {
    let JsonBody(req) = body?;
    Ok(Json(ssf.update(client, req, replace).await?).into_response())
}

async fn delete(State(ssf): State<Ssf>, Receiver(client): Receiver, q: Q) -> Answer {
    let id = stream_id(q, true)?.unwrap_or_default();
    ssf.delete(&client, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn read_status(State(ssf): State<Ssf>, Receiver(client): Receiver, q: Q) -> Answer {
    let id = stream_id(q, true)?.unwrap_or_default();
    Ok(Json(ssf.status(&client, &id).await?).into_response())
}

#[derive(Deserialize)]
struct StatusRequest {
    stream_id: String,
    status: String,
    reason: Option<String>,
}

async fn update_status(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<StatusRequest>, HttpError>,
) -> Answer {
    let JsonBody(req) = body?;
    let status = ssf
        .set_status(&client, &req.stream_id, &req.status, req.reason)
        .await?;
    Ok(Json(status).into_response())
}

#[derive(Deserialize)]
struct SubjectRequest {
    stream_id: String,
    subject: Value,
}

async fn add_subject(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<SubjectRequest>, HttpError>,
) -> Answer {
    let JsonBody(req) = body?;
    ssf.add_subject(&client, &req.stream_id, &req.subject)
        .await?;
    Ok(StatusCode::OK.into_response())
}

async fn remove_subject(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<SubjectRequest>, HttpError>,
) -> Answer {
    let JsonBody(req) = body?;
    ssf.remove_subject(&client, &req.stream_id, &req.subject)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct VerifyRequest {
    stream_id: String,
    state: Option<String>,
}

async fn verify(
    State(ssf): State<Ssf>,
    Receiver(client): Receiver,
    body: Result<JsonBody<VerifyRequest>, HttpError>,
) -> Answer {
    let JsonBody(req) = body?;
    ssf.verify(&client, &req.stream_id, req.state).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
