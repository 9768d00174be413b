//! `GET /events`: the security event feed, as Server-Sent Events or JSON long-poll.
//!
//! The database is the feed; notifications only say "look again". A subscriber
//! subscribes to the wake-up signal *before* reading the backlog and then reads
//! strictly after the last id it delivered, so an event committed between the
//! backlog read and going live is never missed and never delivered twice.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;

use super::bearer::{self, BearerError};
use crate::domain::Core;
use crate::domain::events::{SecurityEvent, StreamSlot};
use crate::store::{self, StoreError};

/// Longest long-poll wait, in seconds.
pub const MAX_WAIT: u64 = 30;
const BATCH: i64 = 100;

pub fn router() -> Router<Arc<Core>> {
    Router::new().route("/events", get(events))
}

#[derive(Deserialize)]
struct Params {
    after: Option<String>,
    wait: Option<String>,
    since: Option<String>,
}

fn bad_request(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": description})),
    )
        .into_response()
}

async fn events(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return bad_request("malformed query string");
    };
    // Who sees what: a client with capability `events` sees everything; a user sees their own events.
    let caller = match bearer::verify(&core, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let filter = if let Some(_sid) = &caller.claims.sid {
        match store::users::by_id(&core.db.read, &caller.claims.sub).await {
            Ok(Some(u)) if !u.disabled => Some(u.id),
            Ok(_) => return BearerError::InvalidToken("the user is disabled").into_response(),
            Err(e) => return BearerError::Internal(e).into_response(),
        }
    } else {
        match core.clients.get(&core.db, &caller.claims.client_id).await {
            Ok(Some(c)) if c.can("events") => None,
            Ok(_) => {
                return BearerError::InsufficientScope("this client may not read the event feed")
                    .into_response();
            }
            Err(e) => return BearerError::Internal(e).into_response(),
        }
    };

    let sse = accepts_sse(&headers);
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let after = match last_event_id.filter(|_| sse).or(params.after.as_deref()) {
        None => None,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return bad_request(
                    "`after` / Last-Event-ID must be a non-negative integer event id",
                );
            }
        },
    };
    let since = match params.since.as_deref().map(|s| s.trim().parse::<i64>()) {
        None => None,
        Some(Ok(t)) if t >= 0 => Some(t),
        Some(_) => return bad_request("`since` must be a non-negative number of seconds"),
    };
    if since.is_some() && params.after.is_some() {
        return bad_request("`since` and `after` are exclusive");
    }
    let wait = match params.wait.as_deref().map(|w| w.parse::<u64>()) {
        None => 0,
        Some(Ok(w)) => w.min(MAX_WAIT),
        Some(Err(_)) => return bad_request("`wait` must be a non-negative number of seconds"),
    };
    // Subscribe before reading anything.
    let wake = core.events.subscribe();
    let start = match resolve_start(&core, after, since).await {
        Ok(Ok(id)) => id,
        Ok(Err(gone)) => return gone,
        Err(e) => return BearerError::Internal(e).into_response(),
    };
    if sse {
        let caller = filter
            .clone()
            .unwrap_or_else(|| caller.claims.client_id.clone());
        let Some(slot) = core.events.open_stream(&caller) else {
            let body = json!({"error": "too_many_streams", "error_description": "too many open event streams for this caller"});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "10")],
                Json(body),
            )
                .into_response();
        };
        Sse::new(stream(core.clone(), start, filter, wake, slot))
            .keep_alive(
                KeepAlive::new()
                    .interval(Duration::from_secs(10))
                    .text("keep-alive"),
            )
            .into_response()
    } else {
        long_poll(&core, start, filter, wait, wake).await
    }
}

/// Where to start: after `after`; else with the first event at or after `since`
/// (UNIX seconds: a verifier's cold start); else from now. 410 when the events
/// wanted have been pruned by retention.
async fn resolve_start(
    core: &Core,
    after: Option<i64>,
    since: Option<i64>,
) -> Result<Result<i64, Response>, StoreError> {
    let retained_from = store::now() - core.cfg.event_retention.as_secs() as i64;
    match (after, since) {
        (None, Some(since)) if since < retained_from => {
            Ok(Err(gone(store::events::last_id(&core.db.read).await?)))
        }
        (None, Some(since)) => Ok(Ok(store::events::last_before(&core.db.read, since).await?)),
        (None, None) => Ok(Ok(store::events::last_id(&core.db.read).await?)),
        (Some(after), _) => {
            if after < store::events::pruned_through(&core.db.read).await? {
                return Ok(Err(gone(store::events::last_id(&core.db.read).await?)));
            }
            Ok(Ok(after))
        }
    }
}

fn gone(next_after: i64) -> Response {
    let body = json!({
        "error": "resync_required",
        "error_description": "events after this id are beyond the retention window; resynchronise (re-read users and sessions) and resume from the newest id",
        "next_after": next_after,
    });
    (StatusCode::GONE, Json(body)).into_response()
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/event-stream") || !accept.contains("application/json")
}

async fn long_poll(
    core: &Core,
    after: i64,
    filter: Option<String>,
    wait: u64,
    mut wake: tokio::sync::watch::Receiver<u64>,
) -> Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let rows = match store::events::after(&core.db.read, after, filter.as_deref(), BATCH).await
        {
            Ok(rows) => rows,
            Err(e) => return BearerError::Internal(e).into_response(),
        };
        let closing = core.events.is_closing();
        if !rows.is_empty() || tokio::time::Instant::now() >= deadline || closing {
            let events: Vec<SecurityEvent> = rows.into_iter().map(SecurityEvent::from).collect();
            let next_after = events.last().map_or(after, |e| e.id);
            return Json(json!({"events": events, "next_after": next_after})).into_response();
        }
        // Woken by a commit here, by the log watcher, or by shutdown; else time out.
        let _ = tokio::time::timeout_at(deadline, wake.changed()).await;
    }
}

struct Feed {
    _slot: StreamSlot,
    core: Arc<Core>,
    cursor: i64,
    filter: Option<String>,
    wake: tokio::sync::watch::Receiver<u64>,
    buffer: VecDeque<SecurityEvent>,
}

fn stream(
    core: Arc<Core>,
    cursor: i64,
    filter: Option<String>,
    wake: tokio::sync::watch::Receiver<u64>,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let feed = Feed {
        _slot: slot,
        core,
        cursor,
        filter,
        wake,
        buffer: VecDeque::new(),
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(e) = feed.buffer.pop_front() {
                let event = Event::default()
                    .id(e.id.to_string())
                    .event(e.kind.clone())
                    .data(serde_json::to_string(&e).expect("event serialises"));
                return Some((Ok(event), feed));
            }
            if feed.core.events.is_closing() {
                return None;
            }
            // Mark the signal seen before reading, so a commit after the read wakes us.
            feed.wake.borrow_and_update();
            match store::events::after(
                &feed.core.db.read,
                feed.cursor,
                feed.filter.as_deref(),
                BATCH,
            )
            .await
            {
                Ok(rows) if !rows.is_empty() => {
                    feed.cursor = rows.last().expect("non-empty").id;
                    feed.buffer
                        .extend(rows.into_iter().map(SecurityEvent::from));
                }
                Ok(_) => {
                    if feed.wake.changed().await.is_err() {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event feed read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
}
