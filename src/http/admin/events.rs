//! `GET /admin/events`: the security event log, narrowed by subject, type and time,
//! newest first.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::sessions::listing_error;
use super::{Admin, Result, Strict, page_limit};
use crate::domain::events::SecurityEvent;
use crate::domain::listings::EventSearch;
use crate::domain::users::Users;

/// The query; times are RFC 3339 or Unix seconds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    sub: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct EncodableEvents<'a> {
    events: &'a [SecurityEvent],
    next_cursor: Option<&'a str>,
}

pub(super) async fn list(
    State(users): State<Users>,
    _admin: Admin,
    Strict(q): Strict<EventsQuery>,
) -> Result<Response> {
    let limit = page_limit(q.limit.as_deref())?;
    let search = EventSearch {
        sub: q.sub,
        kind: q.kind,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
    };
    let page = users
        .events_page(&search, limit)
        .await
        .map_err(listing_error)?;
    Ok(Json(EncodableEvents {
        events: &page.events,
        next_cursor: page.next_cursor.as_deref(),
    })
    .into_response())
}
