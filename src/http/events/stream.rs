//! One SSE stream of the feed: what it holds while it lives (cursor, signals, the
//! caller's claims), how it takes events from the tail and frames them, and why it ends.
//!
//! Time: whether the token has expired is asked of the feed's clock (a test that moves the
//! clock sees it); the tokio `Instant`s below only schedule real waits (heartbeat,
//! recheck, the timer that wakes the stream at `exp`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::watch;

use super::BATCH;
use crate::domain::clock::Clock;
use crate::domain::events::{EventKind, FeedEvent, Slot};
use crate::domain::feed::Feed;
use crate::domain::lane::Seat;
use crate::domain::liveness::{ClientRead, Liveness};
use crate::domain::reach::Reached;
use crate::domain::tail::Take;
use crate::domain::tokens::AccessClaims;

/// The comment sent when a stream has been quiet for `stream_heartbeat`.
const HEARTBEAT_FRAME: Bytes = Bytes::from_static(b": keep-alive\n\n");

/// An event's SSE frame, rendered once per event and shared by every stream that
/// delivers it (the tail hands all of them the same `Arc<FeedEvent>`); cloning
/// `Bytes` only bumps a reference count. The compact JSON has no newline, so the
/// data is one `data:` line.
pub(super) fn frame(e: &FeedEvent) -> Bytes {
    e.frame
        .get_or_init(|| {
            let data = serde_json::to_string(e).expect("event serialises");
            Bytes::from(format!("id: {}\nevent: {}\ndata: {data}\n\n", e.id, e.kind))
        })
        .clone()
}

/// The credentials a stream was opened with, re-checked while it lives: of the token's
/// claims only what the stream's checks read, and the key that signed it (the token
/// itself was verified when the stream opened). The rest of the claims (issuer,
/// audience, scope, roles, `jti`: the slot took its own copy) is not kept, so an idle
/// stream does not hold it.
pub(super) struct Access {
    kid: Box<str>,
    /// A client's token: the same copy as `client_id`.
    sub: Arc<str>,
    /// Shared with the reach entry (and a client's slot).
    client_id: Arc<str>,
    sid: Option<Box<str>>,
    exp: i64,
    /// The stream's entry in the feed's reach (the last event it delivered).
    reached: Reached,
}

/// Why a stream ended: sent as a final `end` event (no `id`, so `Last-Event-ID`
/// stays at the last delivered event) before the server closes the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    TokenExpired,
    /// The token no longer verifies before its `exp`: its signing key was revoked.
    KeyRevoked,
    SessionRevoked,
    UserDisabled,
    /// The client is gone or no longer has the `events` capability.
    CapabilityRevoked,
    /// A newer stream took this one's slot: the same token reconnecting, or a
    /// fresher token of the same caller.
    Superseded,
    ShuttingDown,
}

impl End {
    fn reason(self) -> (&'static str, &'static str) {
        match self {
            Self::TokenExpired => (
                "token_expired",
                "the access token expired; reconnect with a fresh one",
            ),
            Self::KeyRevoked => (
                "key_revoked",
                "the key that signed the access token was revoked; reconnect with a fresh token",
            ),
            Self::SessionRevoked => ("session_revoked", "the session was revoked"),
            Self::UserDisabled => ("user_disabled", "the user is disabled"),
            Self::CapabilityRevoked => (
                "capability_revoked",
                "this client may no longer read the event feed",
            ),
            Self::Superseded => (
                "superseded",
                "a newer stream of this token, or of a fresher token of this caller, took this stream's slot",
            ),
            Self::ShuttingDown => (
                "shutting_down",
                "the server is shutting down; reconnect with Last-Event-ID",
            ),
        }
    }

    fn frame(self) -> Bytes {
        let (reason, description) = self.reason();
        let data = json!({"reason": reason, "error_description": description});
        Bytes::from(format!("event: end\ndata: {data}\n\n"))
    }
}

impl Access {
    /// What the stream keeps of a caller whose token, signed by `kid`, was verified.
    /// `client_id` is the claims' own, shared.
    pub(super) fn new(
        kid: String,
        claims: AccessClaims,
        client_id: Arc<str>,
        reached: Reached,
    ) -> Self {
        debug_assert_eq!(*client_id, claims.client_id);
        let sub = if claims.sub == *client_id {
            client_id.clone()
        } else {
            claims.sub.into()
        };
        Self {
            kid: kid.into(),
            sub,
            client_id,
            sid: claims.sid.map(Into::into),
            exp: claims.exp,
            reached,
        }
    }

    /// The first event in `events` that ends this stream's authority (its session
    /// revoked or its user disabled), by position, and why. The stream delivers the
    /// events up to and including that one, so the app learns why it was signed out
    /// (a role change's `user.roles_changed` precedes the revocations it causes),
    /// and nothing after it.
    fn ended_by(&self, events: &[Arc<FeedEvent>]) -> Option<(usize, End)> {
        let sid = self.sid.as_deref()?;
        events.iter().enumerate().find_map(|(i, e)| match e.kind {
            EventKind::SessionRevoked if e.sid.as_deref() == Some(sid) => {
                Some((i, End::SessionRevoked))
            }
            EventKind::UserDisabled if e.sub.as_deref() == Some(&*self.sub) => {
                Some((i, End::UserDisabled))
            }
            _ => None,
        })
    }

    /// In memory, after a key event: the token still verifies (its key was not revoked).
    fn still_signed(&self, feed: &Feed) -> Result<(), End> {
        if feed.keys.current().accepts(&self.kid) {
            Ok(())
        } else {
            Err(End::KeyRevoked)
        }
    }

    /// The token's `exp`, as a time since the epoch.
    fn exp(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.exp).unwrap_or(0))
    }

    /// Whether the token has expired by the server's clock.
    fn expired(&self, clock: &Clock) -> bool {
        clock.wall() >= self.exp()
    }

    /// When to look at the clock again for the token's expiry: the time left by the
    /// server's clock, waited for in real (monotonic) time. A test that moves the clock
    /// past `exp` sees the stream end at its next recheck, or when this timer fires.
    fn expiry(&self, clock: &Clock) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.exp().saturating_sub(clock.wall())
    }

    /// Whether the stream may go on, read from the database: the token is unexpired
    /// and still verifies (its key is not revoked), and its session and user, or its
    /// client, are as they must be. Run when the stream opens and every
    /// `stream_recheck` (for what the feed does not announce, such as a client
    /// changed in the database); a database error keeps the stream (retried then).
    async fn check(&self, feed: &Feed) -> Result<(), End> {
        if self.expired(&feed.clock) {
            return Err(End::TokenExpired);
        }
        self.still_signed(feed)?;
        let live = feed
            .live
            .liveness_of(
                &self.sub,
                &self.client_id,
                self.sid.as_deref(),
                ClientRead::Fresh,
            )
            .await
            .map(|live| match live {
                Liveness::User(_) | Liveness::Client { events: true } => Ok(()),
                Liveness::UserDisabled => Err(End::UserDisabled),
                Liveness::SessionRevoked { .. } => Err(End::SessionRevoked),
                Liveness::Client { events: false } | Liveness::ClientGone => {
                    Err(End::CapabilityRevoked)
                }
            });
        live.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "event stream: re-checking the caller failed; keeping the stream");
            Ok(())
        })
    }
}

struct Subscription {
    /// Held while the stream lives (dropping it gives the slot back); says when a
    /// fresher token took it (one waker slot, registered while the stream waits).
    slot: Slot,
    /// The feed's shared parts (tail, clock, settings, checks).
    shared: Feed,
    cursor: i64,
    filter: Option<String>,
    /// The one signal the stream waits on: an event it may see, a key event, the
    /// shutdown (the tail's flags say which).
    wake: watch::Receiver<i64>,
    /// The key-event count this stream last checked its signing key at.
    keys_seen: u64,
    /// When the stream next re-reads its caller from the database.
    recheck: tokio::time::Instant,
    /// When the stream last sent anything (a heartbeat follows `stream_heartbeat` of quiet).
    sent: tokio::time::Instant,
    /// When the token expires by the clock, as a real-time deadline (the waits are real;
    /// whether `exp` has passed is the clock's to say).
    expires: tokio::time::Instant,
    /// One timer for all three deadlines, armed for the earliest. Moved forward only
    /// when it fires early, so a busy stream does not re-arm a timer per event.
    timer: Pin<Box<tokio::time::Sleep>>,
    buffer: VecDeque<Arc<FeedEvent>>,
    access: Access,
    /// The stream ends, for this reason, once `buffer` is delivered.
    ending: Option<End>,
    /// Set once the final `end` event went out.
    ended: bool,
    /// A stream of every event: its place on the feed's lane, where it waits once it
    /// has delivered everything, if its connection lets the lane write to it.
    seat: Option<Arc<Seat>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Off the lane before the connection closes its socket.
        if let Some(seat) = &self.seat {
            self.shared.lane.unpark(seat);
        }
    }
}

/// How a parked stream was woken.
enum Woke {
    /// The lane handed it back.
    Released,
    /// Its timer fired (heartbeat, recheck, expiry).
    Timer,
    /// A newer stream took its slot.
    Evicted,
}

impl Subscription {
    /// The database says the stream's session or user has ended: the change that did it
    /// committed with its event, which the tail may not have read yet. Buffers the
    /// events up to and including that one, as when the feed announces it first
    /// (false when they are not found: the stream then ends at once).
    async fn deliver_up_to_the_end(&mut self) -> bool {
        if self.shared.tail.fill(&self.shared).await.is_err() {
            return false;
        }
        let taken = self
            .shared
            .tail
            .take(
                &self.shared,
                &mut self.cursor,
                self.filter.as_deref(),
                BATCH,
            )
            .await;
        match taken {
            Ok(events) if self.access.ended_by(&events).is_some() => {
                self.hold(events);
                true
            }
            _ => false,
        }
    }

    /// Buffers `events` for delivery, up to and including one that ends the stream.
    fn hold(&mut self, mut events: Vec<Arc<FeedEvent>>) {
        if let Some((last, end)) = self.access.ended_by(&events) {
            events.truncate(last + 1);
            self.ending = Some(end);
        }
        self.buffer.extend(events);
    }

    /// The stream's seat, if it may wait on the lane: it has one (a stream of every
    /// event, no session to end it) and its connection is attached. (What a lane write
    /// left unwritten was written at the top of the loop, before the stream got here.)
    fn parks(&self) -> Option<Arc<Seat>> {
        let seat = self.seat.as_ref()?;
        (self.ending.is_none() && seat.attached()).then(|| seat.clone())
    }

    /// Waits on the lane, if it may park there (`None` if not: an event came meanwhile,
    /// or the lane is not running): until the lane hands it back, its timer fires or
    /// its slot is taken. Takes up where the lane left it.
    async fn wait_parked(&mut self, seat: &Arc<Seat>) -> Option<Woke> {
        let tail = &self.shared.tail;
        if !self.shared.lane.park(seat, self.cursor, || tail.last()) {
            return None;
        }
        let woke = tokio::select! {
            () = std::future::poll_fn(|cx| seat.poll_released(cx)) => Woke::Released,
            () = self.timer.as_mut() => Woke::Timer,
            () = std::future::poll_fn(|cx| self.slot.evicted.poll(cx)) => Woke::Evicted,
        };
        let back = self.shared.lane.unpark(seat);
        self.cursor = self.cursor.max(back.cursor);
        if let Some(sent) = back.sent {
            self.sent = sent;
        }
        Some(woke)
    }

    /// `frame` as the connection carries it: on a connection that lets the lane write
    /// to its socket the stream frames its own chunks, as the lane's writes are framed.
    fn framed(&self, frame: Bytes) -> Bytes {
        match &self.seat {
            Some(seat) if seat.attached() => {
                Bytes::from(crate::http::stream_conn::chunk::chunk(&frame))
            }
            _ => frame,
        }
    }

    /// Ends the stream with `end` as its last event (framed for the connection).
    fn end(&mut self, end: End) -> Bytes {
        let (reason, _) = end.reason();
        tracing::debug!(reason, "event stream ended");
        self.ended = true;
        self.framed(end.frame())
    }
}

pub(super) fn stream(
    shared: Feed,
    cursor: i64,
    filter: Option<String>,
    wake: watch::Receiver<i64>,
    slot: Slot,
    access: Access,
    seat: Option<Arc<Seat>>,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let feed = Subscription {
        slot,
        keys_seen: shared.tail.keys_seen(),
        // The first pass checks at once: the caller may have changed since the token was read.
        recheck: tokio::time::Instant::now(),
        sent: tokio::time::Instant::now(),
        expires: access.expiry(&shared.clock),
        timer: Box::pin(tokio::time::sleep(shared.cfg.stream_heartbeat)),
        shared,
        cursor,
        filter,
        wake,
        buffer: VecDeque::new(),
        access,
        ending: None,
        ended: false,
        seat,
    };
    let frames = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            // What the lane's last write to this stream's socket left unwritten goes first.
            if let Some(rest) = feed.seat.as_ref().and_then(|seat| seat.take_rest()) {
                return Some((Bytes::from(rest), feed));
            }
            if let Some(e) = feed.buffer.pop_front() {
                feed.sent = tokio::time::Instant::now();
                feed.access.reached.delivered(e.id);
                return Some((feed.framed(frame(&e)), feed));
            }
            if feed.ended {
                return None;
            }
            if let Some(end) = feed.ending {
                return Some((feed.end(end), feed));
            }
            // Mark the signal seen before reading the flags and taking, so whatever
            // happens after wakes us.
            feed.wake.borrow_and_update();
            if feed.shared.tail.is_closing() {
                return Some((feed.end(End::ShuttingDown), feed));
            }
            if tokio::time::Instant::now() >= feed.expires {
                if feed.access.expired(&feed.shared.clock) {
                    return Some((feed.end(End::TokenExpired), feed));
                }
                // A pinned clock stood still while the timer ran: wait out what it says is left.
                feed.expires = feed.access.expiry(&feed.shared.clock);
            }
            if tokio::time::Instant::now() >= feed.recheck {
                let every = feed.shared.cfg.stream_recheck;
                feed.recheck = tokio::time::Instant::now() + every;
                // The database reads below are boxed, as is a catch-up: an idle stream's
                // future is sized by its waits, not by the queries it makes now and then.
                if let Err(end) = Box::pin(feed.access.check(&feed.shared)).await {
                    if Box::pin(feed.deliver_up_to_the_end()).await {
                        continue;
                    }
                    return Some((feed.end(end), feed));
                }
            }
            let keys_now = feed.shared.tail.keys_seen();
            if keys_now != feed.keys_seen {
                feed.keys_seen = keys_now;
                if let Err(end) = feed.access.still_signed(&feed.shared) {
                    return Some((feed.end(end), feed));
                }
            }
            let taken = match feed
                .shared
                .tail
                .after(feed.cursor, feed.filter.as_deref(), BATCH)
            {
                Take::Events { events, through } => {
                    feed.cursor = through;
                    Ok(events)
                }
                // Behind the tail: the catch-up reads the database.
                Take::Behind => {
                    let Subscription {
                        shared,
                        cursor,
                        filter,
                        ..
                    } = &mut feed;
                    Box::pin(shared.tail.take(shared, cursor, filter.as_deref(), BATCH)).await
                }
            };
            match taken {
                Ok(events) if !events.is_empty() => feed.hold(events),
                Ok(_) => {
                    let heartbeat = feed.sent + feed.shared.cfg.stream_heartbeat;
                    let due = feed.expires.min(feed.recheck).min(heartbeat);
                    if due < feed.timer.deadline() || feed.timer.is_elapsed() {
                        feed.timer.as_mut().reset(due);
                    }
                    if let Some(seat) = feed.parks()
                        && let Some(woke) = feed.wait_parked(&seat).await
                    {
                        match woke {
                            Woke::Released => {}
                            Woke::Timer => {
                                // The lane's writes count as sending: a heartbeat only after
                                // quiet, and never ahead of what a lane write left to send.
                                let heartbeat = feed.sent + feed.shared.cfg.stream_heartbeat;
                                let now = tokio::time::Instant::now();
                                if now < feed.expires && now >= heartbeat && !seat.has_rest() {
                                    feed.sent = now;
                                    return Some((feed.framed(HEARTBEAT_FRAME), feed));
                                }
                            }
                            // After what the lane left unwritten.
                            Woke::Evicted => feed.ending = Some(End::Superseded),
                        }
                        continue;
                    }
                    // The signal's wait is boxed (one allocation per wait, on this path
                    // only): inline, it would add about 90 bytes to every stream's future,
                    // held for the stream's life, lane streams' included.
                    tokio::select! {
                        changed = Box::pin(feed.wake.changed()) => {
                            if changed.is_err() {
                                return None;
                            }
                        }
                        // Expiry and the recheck are handled at the top of the loop.
                        () = feed.timer.as_mut() => {
                            let now = tokio::time::Instant::now();
                            if now < feed.expires && now >= heartbeat {
                                feed.sent = now;
                                return Some((feed.framed(HEARTBEAT_FRAME), feed));
                            }
                        }
                        () = std::future::poll_fn(|cx| feed.slot.evicted.poll(cx)) => {
                            return Some((feed.end(End::Superseded), feed));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event feed read failed; retrying");
                    Box::pin(tokio::time::sleep(Duration::from_millis(500))).await;
                }
            }
        }
    });
    frames.map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::SecurityEvent;

    #[test]
    fn an_events_frame_is_rendered_once_and_shared() {
        let e: FeedEvent = SecurityEvent {
            id: 7,
            kind: EventKind::RolesChanged,
            sub: Some("u1".into()),
            sid: None,
            ver: Some(3),
            roles: Some(vec!["a".into(), "b".into()]),
            reason: None,
            kid: None,
            at: "2026-12-01T00:00:00Z".into(),
        }
        .into();
        let first = frame(&e);
        assert_eq!(
            std::str::from_utf8(&first).unwrap(),
            "id: 7\nevent: user.roles_changed\ndata: {\"id\":7,\"type\":\"user.roles_changed\",\"sub\":\"u1\",\"sid\":null,\"ver\":3,\"roles\":[\"a\",\"b\"],\"reason\":null,\"kid\":null,\"at\":\"2026-12-01T00:00:00Z\"}\n\n"
        );
        // A second stream gets the same bytes, not a second rendering.
        assert_eq!(frame(&e).as_ptr(), first.as_ptr());
    }

    #[test]
    fn an_end_frame_has_no_id() {
        let f = End::Superseded.frame();
        let text = std::str::from_utf8(&f).unwrap();
        assert!(text.starts_with("event: end\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n") && !text.contains("id:"), "{text}");
    }
}
