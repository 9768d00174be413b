//! `GET /events`: the security event feed, as Server-Sent Events or JSON long-poll.
//!
//! The database is the feed; notifications only say "look again". A subscriber
//! subscribes to the wake-up signal *before* reading the backlog and then reads
//! strictly after the last id it delivered, so an event committed between the
//! backlog read and going live is never missed and never delivered twice.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::error::{HttpError, Surface};
use super::{bearer, cors};
use crate::domain::Core;
use crate::domain::events::Refused;
use crate::domain::feed::Feed;
use crate::domain::feed::Start;
use crate::domain::keys::KeySet;
use crate::domain::lane::Seat;
use crate::domain::liveness::{ClientRead, Liveness};
use crate::domain::scopes;
use stream::{Access, stream};

pub(super) mod lane;
mod stream;

/// Longest long-poll wait, in seconds.
pub(super) const MAX_WAIT: u64 = 30;
/// Most events one read hands a subscriber.
const BATCH: usize = 100;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/events", get(events))
}

#[derive(Deserialize)]
struct Params {
    after: Option<String>,
    wait: Option<String>,
    since: Option<String>,
}

fn bad_request(description: &'static str) -> Response {
    HttpError::invalid_request(description).into_response()
}

/// An internal failure on the feed: the bearer surface's body.
fn internal(e: &(dyn std::error::Error + 'static)) -> Response {
    HttpError::internal(Surface::Bearer, e).into_response()
}

async fn events(
    State(feed): State<Feed>,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return bad_request("malformed query string");
    };
    // Who sees what: a client with capability `events` sees everything; a user sees their own
    // events (through a third-party client, with scope `events`).
    let caller = match bearer::verify(&feed.tokens, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let filter = match feed.live.liveness(&caller.claims, ClientRead::Cached).await {
        Ok(Liveness::User(u)) => Some(u.id),
        Ok(Liveness::Client { events: true }) => None,
        Ok(Liveness::UserDisabled) => {
            return HttpError::invalid_token("the user is disabled").into_response();
        }
        Ok(Liveness::SessionRevoked { reason }) => {
            return HttpError::invalid_token(crate::domain::liveness::revoked_description(
                reason.as_deref(),
            ))
            .into_response();
        }
        Ok(Liveness::Client { events: false } | Liveness::ClientGone) => {
            return HttpError::insufficient_scope("this client may not read the event feed")
                .into_response();
        }
        Err(e) => return internal(&e),
    };
    let client = match bearer::client_of(&feed.live, &caller).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Some(refused) = cors::refused_bearer(&headers, client.as_deref()) {
        return refused;
    }
    // A third-party client follows its user's events only with scope `events`.
    let scope = caller.claims.scope.as_deref().unwrap_or("");
    if filter.is_some() && !client.is_some_and(|c| c.receives(scope, scopes::EVENTS)) {
        return HttpError::insufficient_scope("this token needs scope `events` to read the feed")
            .into_response();
    }

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
    // Slots are the caller's (a user, or a client), shared out per token.
    let owner = filter
        .clone()
        .unwrap_or_else(|| caller.claims.client_id.clone());
    let (jti, iat) = (caller.claims.jti.as_str(), caller.claims.iat);
    let slot = if sse {
        feed.events.open_stream(&owner, jti, iat)
    } else {
        feed.events.open_poll(&owner, jti, iat)
    };
    let slot = match slot {
        Ok(slot) => slot,
        Err(refused) => return too_many(sse, refused),
    };
    // Subscribe before reading anything: a user's feed is woken by that user's events only.
    let wake = match &filter {
        Some(user) => feed.tail.watch_user(user),
        None => feed.tail.watch_all(),
    };
    let start = match feed.feed_start(after, since).await {
        Ok(Start::After(id)) => id,
        Ok(Start::Gone { next_after }) => return gone(next_after),
        Err(e) => return internal(&e),
    };
    if sse {
        let Some(kid) = bearer::token(&headers).ok().and_then(KeySet::kid_of) else {
            return HttpError::bearer_required().into_response();
        };
        // One copy of the client id for the stream, its reach entry and (a client's
        // stream) its slot, which shares the caller's.
        let client_id: Arc<str> = if filter.is_none() {
            slot.caller().clone()
        } else {
            caller.claims.client_id.as_str().into()
        };
        let reached = feed.reach.open(
            client_id.clone(),
            filter.as_deref(),
            feed.clock.now(),
            start,
        );
        // A stream of every event, with no session that an event could end, may wait on
        // the lane if its connection lets the lane write to it ([`crate::domain::lane`]).
        let seat = (filter.is_none() && caller.claims.sid.is_none())
            .then(|| Seat::new(caller.claims.exp, reached.progress()));
        let access = Access::new(kid, caller.claims, client_id, reached);
        let body = axum::body::Body::from_stream(stream(
            feed.clone(),
            start,
            filter,
            wake,
            slot,
            access,
            seat.clone(),
        ));
        let mut response = (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response();
        if let Some(seat) = seat {
            response.extensions_mut().insert(seat);
        }
        response
    } else {
        let response = long_poll(&feed, start, filter, wait, wake).await;
        drop(slot);
        response
    }
}

/// 429 for a caller (or one token) at its stream or long-poll cap.
fn too_many(sse: bool, refused: Refused) -> Response {
    let (error, what) = if sse {
        ("too_many_streams", "event streams")
    } else {
        ("too_many_polls", "long-polls")
    };
    let whose = match refused {
        Refused::Token => "this access token",
        Refused::Caller => "this caller",
    };
    let retry = if sse { 10 } else { 1 };
    HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        error,
        format!("too many open {what} for {whose}"),
    )
    .retry_after(retry)
    .into_response()
}

/// 410: the cursor is not in the log (pruned by retention, or past the newest event).
fn gone(next_after: i64) -> Response {
    HttpError::new(
        StatusCode::GONE,
        "resync_required",
        "this event id is beyond the retention window or past the newest event; resynchronise (re-read users and sessions) and resume from next_after",
    )
    .next_after(next_after)
    .into_response()
}

pub(super) fn accepts_sse(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/event-stream") || !accept.contains("application/json")
}

async fn long_poll(
    feed: &Feed,
    after: i64,
    filter: Option<String>,
    wait: u64,
    mut wake: watch::Receiver<i64>,
) -> Response {
    // How long the poll waits, in real (monotonic) time; no rule reads it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut cursor = after;
    // The tail may not have read a commit made just before this request: a poll
    // sees everything committed before it, at one read per poll (not per event).
    if let Err(e) = feed.tail.fill(feed).await {
        return internal(&e);
    }
    loop {
        // Mark the signal seen before taking, so an event (or the shutdown) after the
        // take wakes us.
        wake.borrow_and_update();
        let events = match feed
            .tail
            .take(feed, &mut cursor, filter.as_deref(), BATCH)
            .await
        {
            Ok(events) => events,
            Err(e) => return internal(&e),
        };
        let done =
            !events.is_empty() || tokio::time::Instant::now() >= deadline || feed.tail.is_closing();
        if done {
            let next_after = events.last().map_or(after, |e| e.id);
            return Json(json!({"events": events, "next_after": next_after})).into_response();
        }
        tokio::select! {
            _ = wake.changed() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}
