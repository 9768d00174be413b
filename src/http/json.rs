//! [`JsonBody`]: a JSON request body parsed into a typed struct, with the admin API's
//! error (`invalid_request`) instead of axum's text rejection.

use axum::extract::{FromRef, FromRequest, OptionalFromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::HttpError;
use super::form::read_body;
use super::state::Settings;

/// JSON bodies beyond this answer 413.
const JSON_LIMIT: usize = 64 * 1024;

/// A JSON object body, as `T`. Not axum's `Json`: the content type must be exactly
/// `application/json` (415 otherwise), the body is read within half the request
/// timeout, and every malformed body (syntax, shape, types, an array where an object
/// is expected) is a 400 `invalid_request` that says what is wrong. Needs of the state
/// only the settings (the request timeout), as [`Settings`].
pub(super) struct JsonBody<T>(pub(super) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Settings: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, HttpError> {
        let Settings(cfg) = Settings::from_ref(state);
        let (parts, body) = req.into_parts();
        if !is_json(&parts.headers) {
            return Err(HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "content type must be application/json",
            ));
        }
        let bytes = read_body(body, JSON_LIMIT, cfg.request_timeout / 2).await?;
        let bad =
            |e: serde_json::Error| HttpError::invalid_request(format!("invalid JSON body: {e}"));
        let value: Value = serde_json::from_slice(&bytes).map_err(bad)?;
        // serde would also accept an array for a struct; the contract is an object.
        if !value.is_object() {
            return Err(HttpError::invalid_request(
                "invalid JSON body: expected an object",
            ));
        }
        serde_json::from_value(value).map(Self).map_err(bad)
    }
}

/// An optional body: none when the request has no `Content-Type` at all; otherwise
/// as [`JsonBody`].
impl<T, S> OptionalFromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Settings: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, HttpError> {
        if !req.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// Whether the media type (parameters aside) is `application/json`, up to case.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
}
