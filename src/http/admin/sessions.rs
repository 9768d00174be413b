//! `GET /admin/sessions`: the live sessions of a user or of a client, keyset paged.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::bodies::EncodableSession;
use super::{Admin, Result, Strict, page_limit};
use crate::domain::listings::{ListingError, SessionsOf};
use crate::domain::users::Users;
use crate::http::error::HttpError;

/// The query: exactly one of `user` and `client`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionsQuery {
    user: Option<String>,
    client: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A live session with its user.
#[derive(Serialize)]
struct EncodableListedSession<'a> {
    #[serde(flatten)]
    session: EncodableSession<'a>,
    user_id: &'a str,
}

#[derive(Serialize)]
struct EncodableSessions<'a> {
    next_cursor: Option<&'a str>,
    sessions: Vec<EncodableListedSession<'a>>,
}

/// The wire form of a listing's error: 400 for what the caller sent, 404 for who is missing.
pub(super) fn listing_error(e: ListingError) -> HttpError {
    match e {
        e @ (ListingError::BadCursor | ListingError::Invalid(_)) => {
            HttpError::invalid_request(e.to_string())
        }
        ListingError::NotFound(what) => super::not_found(what),
        ListingError::Store(e) => e.into(),
    }
}

pub(super) async fn list(
    State(users): State<Users>,
    _admin: Admin,
    Strict(q): Strict<SessionsQuery>,
) -> Result<Response> {
    let limit = page_limit(q.limit.as_deref())?;
    let of = match (q.user, q.client) {
        (Some(user), None) => SessionsOf::User(user),
        (None, Some(client)) => SessionsOf::Client(client),
        _ => {
            return Err(HttpError::invalid_request(
                "give exactly one of user (a user id) and client (a client id)",
            ));
        }
    };
    let page = users
        .sessions_page(&of, q.cursor.as_deref(), limit)
        .await
        .map_err(listing_error)?;
    let sessions = page
        .sessions
        .iter()
        .map(|(user_id, s)| EncodableListedSession {
            session: EncodableSession::from(s),
            user_id,
        })
        .collect();
    Ok(Json(EncodableSessions {
        next_cursor: page.next_cursor.as_deref(),
        sessions,
    })
    .into_response())
}
