//! `POST /ssf/poll/{stream_id}`: RFC 8936 poll delivery. Outside the request timeout:
//! a long-poll bounds its own wait (`ssf_poll_wait`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::Receiver;
use crate::domain::Core;
use crate::domain::ssf::poll::PollRequest;
use crate::domain::ssf::{Ssf, SsfError};
use crate::http::error::HttpError;
use crate::http::json::JsonBody;

pub(in crate::http) fn router() -> Router<Arc<Core>> {
    Router::new().route("/ssf/poll/{stream_id}", post(poll))
}

/// RFC 8935 §2.3's error body, which RFC 8936 §2.4.4 answers a bad poll with.
#[derive(Serialize)]
struct PollError {
    err: &'static str,
    description: String,
}

fn bad(description: impl Into<String>) -> Response {
    let body = PollError {
        err: "invalid_request",
        description: description.into(),
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn poll(
    State(ssf): State<Ssf>,
    Path(stream_id): Path<String>,
    Receiver(client): Receiver,
    body: Result<Option<JsonBody<PollRequest>>, HttpError>,
) -> Response {
    let req = match body {
        Ok(body) => body.map(|JsonBody(r)| r).unwrap_or_default(),
        Err(_) => {
            return bad(
                "the body must be a JSON object with maxEvents, returnImmediately, ack, setErrs",
            );
        }
    };
    match ssf.poll(&client, &stream_id, req).await {
        Ok(answer) => Json(answer).into_response(),
        Err(SsfError::Invalid(why)) => bad(why),
        Err(e) => HttpError::from(e).into_response(),
    }
}
