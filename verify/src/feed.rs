//! Following `GET /events`: a catch-up of one token lifetime (JSON long-poll with
//! `since`), then an SSE stream resumed with `Last-Event-ID`, reconnected with jittered
//! backoff after a failure (a stream request unanswered for [`HEAD_TIMEOUT`], and a stream
//! ended within [`MIN_STREAM`] of opening, are failures too). The issuer ends a stream at
//! its token's `exp`: ahead of that, the next stream is opened with a fresh
//! client-credentials token while the current one still delivers, so that no change waits
//! for a reconnection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{StatusCode, header};
use serde::Deserialize;
use tessera_proto::SecurityEvent;
use tokio::time::Instant;

use crate::claims::LEEWAY;
use crate::sse::{Parser, SseEvent};
use crate::state::Effect;
use crate::{Shared, unix_now};

/// A stream silent for this long is dead (the issuer sends a heartbeat every 10-15 s).
const IDLE: Duration = Duration::from_secs(35);
/// How long a stream request may wait for its response head (status and headers). An
/// issuer, or a proxy, that accepts the connection and never answers would otherwise hold
/// the attempt, and the follower with it, for ever. The body has no such bound: a stream
/// is long-lived, and `IDLE` watches it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream the issuer ends sooner than this after it opened counts as a failure: it ends a
/// stream at its token's expiry, which the follower renews ahead of, so one ended at once is
/// a feed in trouble, to be retried with backoff, never in a loop.
const MIN_STREAM: Duration = Duration::from_secs(1);
/// Seconds of margin on the catch-up's start, beyond the token lifetime and leeway
/// (event times are whole seconds, taken just before their transaction commits).
const MARGIN: i64 = 5;
/// The next stream is opened this long before the current one's token may expire (at
/// most half the token's lifetime): time for a token request, a reconnection and a few
/// retries.
const RENEW_AHEAD: Duration = Duration::from_secs(10);
/// Nor sooner than this after the token was asked for: at most two token requests a
/// second, however short the issuer's lifetime.
const MIN_RENEW: Duration = Duration::from_millis(500);

struct FeedError {
    what: String,
    retry_after: Option<Duration>,
}

impl<E: std::fmt::Display> From<E> for FeedError {
    fn from(e: E) -> Self {
        Self {
            what: e.to_string(),
            retry_after: None,
        }
    }
}

impl FeedError {
    /// How long to wait after this failure: what the issuer said, else the backoff.
    fn retry_in(&self, failures: u32) -> Duration {
        self.retry_after.unwrap_or_else(|| backoff(failures))
    }
}

fn failed(what: impl Into<String>, retry_after: Option<Duration>) -> FeedError {
    FeedError {
        what: what.into(),
        retry_after,
    }
}

/// The verifier's own client-credentials token for the feed.
#[derive(Clone)]
struct Token {
    value: String,
    /// When to open a stream with a fresh one.
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// When to open the next stream for a token asked for at `asked` that the issuer said
/// `expires_in` seconds of.
fn renewal(asked: Instant, expires_in: u64) -> Instant {
    // The issuer counts `expires_in` from the token's `iat`, its clock cut to the second:
    // the token may expire up to a second sooner than `expires_in` after it was asked for.
    let lifetime = Duration::from_secs(expires_in.saturating_sub(1));
    let ahead = RENEW_AHEAD.min(lifetime / 2);
    asked + (lifetime - ahead).max(MIN_RENEW)
}

/// A stream the issuer accepted, to be read.
struct Stream {
    resp: reqwest::Response,
    /// The token it was opened with: the issuer ends the stream when that expires.
    token: Token,
}

/// What the follower keeps from one stream to the next. Its methods take `&self`: the
/// next stream is opened while the current one is read.
struct Follower {
    shared: Arc<Shared>,
    token: Mutex<Option<Token>>,
    /// The next stream first catches up from the log (at start, and after a 410).
    resync: AtomicBool,
}

/// Runs for the verifier's life.
pub(crate) async fn follow(shared: Arc<Shared>) {
    let feed = Follower {
        shared,
        token: Mutex::new(None),
        resync: AtomicBool::new(true),
    };
    let mut failures: u32 = 0;
    // A stream opened ahead of the previous one's end, to be read next.
    let mut next = None;
    loop {
        match feed.session(next.take()).await {
            // The stream ended (by the issuer, not at once, or taken over by the next): go
            // on at once.
            Ok(taken_over) => {
                next = taken_over;
                failures = 0;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = e.retry_in(failures);
                tracing::warn!(error = %e.what, retry_in = ?wait, "event feed unavailable");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// 100 ms doubling to 10 s, with up to 50 % jitter so that verifiers do not reconnect in step.
fn backoff(failures: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.min(7)).min(10_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

impl Follower {
    /// Reads `next`, or a stream opened now; returns the one that took over from it, if any.
    async fn session(&self, next: Option<Stream>) -> Result<Option<Stream>, FeedError> {
        let stream = match next {
            Some(stream) => stream,
            None => self.open(None).await?,
        };
        self.read(stream).await
    }

    /// The cached token unless it is due for renewal, or is the one a new stream `replaces`.
    async fn bearer(&self, replaces: Option<&Token>) -> Result<Token, FeedError> {
        let cached = self.token.lock().expect("token").clone();
        match cached {
            Some(t)
                if Instant::now() < t.renew_at && replaces.is_none_or(|r| r.value != t.value) =>
            {
                Ok(t)
            }
            _ => self.renew().await,
        }
    }

    async fn renew(&self) -> Result<Token, FeedError> {
        let shared = &*self.shared;
        let s = &shared.settings;
        let asked = Instant::now();
        let resp = shared
            .http
            .post(&shared.endpoints.token)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", s.client_id.as_str()),
                ("client_secret", s.client_secret.as_str()),
            ])
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(failed(
                format!("the token endpoint answered {}", resp.status()),
                None,
            ));
        }
        let t: TokenResponse = resp.json().await?;
        let token = Token {
            value: t.access_token,
            renew_at: renewal(asked, t.expires_in),
        };
        *self.token.lock().expect("token") = Some(token.clone());
        Ok(token)
    }

    /// Opens a stream that resumes after the last event applied, with a token other than
    /// the one it `replaces`.
    async fn open(&self, replaces: Option<&Token>) -> Result<Stream, FeedError> {
        let shared = &*self.shared;
        let token = self.bearer(replaces).await?;
        if self.resync.load(Ordering::Relaxed) {
            catch_up(shared, &token.value).await?;
            self.resync.store(false, Ordering::Relaxed);
        }
        let last = *shared.last_id.lock().expect("last id");
        let mut req = shared
            .http
            .get(&shared.endpoints.events)
            .bearer_auth(&token.value)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        // A bound on the head only: `RequestBuilder::timeout` would cover the whole body.
        let resp = tokio::time::timeout(HEAD_TIMEOUT, req.send())
            .await
            .map_err(|_| {
                failed(
                    format!(
                        "the feed did not answer within {} s",
                        HEAD_TIMEOUT.as_secs()
                    ),
                    None,
                )
            })??;
        match resp.status() {
            StatusCode::OK => Ok(Stream { resp, token }),
            StatusCode::GONE => {
                self.resync.store(true, Ordering::Relaxed);
                Err(failed(
                    "the feed cannot resume from the last event id (beyond retention or past the newest event)",
                    Some(Duration::ZERO),
                ))
            }
            StatusCode::UNAUTHORIZED => {
                *self.token.lock().expect("token") = None;
                Err(failed("the feed refused the verifier's token", None))
            }
            status => {
                let retry_after = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .map(Duration::from_secs);
                Err(failed(format!("the feed answered {status}"), retry_after))
            }
        }
    }

    /// Reads `stream` until it ends; returns the stream to read next, if one was opened.
    /// Ahead of its token's expiry the next stream is opened, resuming after the last
    /// event applied, while this one still delivers; once the issuer has accepted that
    /// one, this one is closed. An event both deliver is applied once ([`apply`]), so
    /// the switch neither loses nor repeats one. A stream the issuer ends within
    /// [`MIN_STREAM`] of opening, with no next one on its way, is a failure.
    async fn read(&self, stream: Stream) -> Result<Option<Stream>, FeedError> {
        let shared = &*self.shared;
        let Stream { mut resp, token } = stream;
        shared.connected.store(true, Ordering::Relaxed);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        alive(shared);
        let opened = Instant::now();
        let mut parser = Parser::default();
        let silent = tokio::time::sleep(IDLE);
        tokio::pin!(silent);
        // The next stream, due at `renew`, on its way in `next`. While this one is read, an
        // attempt that fails (the token endpoint down, say) is retried with backoff; once
        // this one has ended, the attempt in flight is awaited, and its failure is
        // `follow`'s to retry.
        let renew = tokio::time::sleep_until(token.renew_at);
        tokio::pin!(renew);
        let mut failures = 0;
        let mut next = None;
        let ended = loop {
            tokio::select! {
                chunk = resp.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        alive(shared);
                        silent.as_mut().reset(Instant::now() + IDLE);
                        for e in parser.feed(&bytes) {
                            deliver(shared, &e);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(FeedError::from(e)),
                },
                () = &mut silent => {
                    break Err(failed("the feed went silent", Some(Duration::ZERO)));
                }
                () = &mut renew, if next.is_none() => {
                    next = Some(Box::pin(self.open(Some(&token))));
                }
                opened = async { next.as_mut().expect("only while opening").await },
                    if next.is_some() =>
                {
                    match opened {
                        // Returning drops this stream's response, which closes it.
                        Ok(taking_over) => return Ok(Some(taking_over)),
                        Err(e) => {
                            next = None;
                            failures += 1;
                            let wait = e.retry_in(failures);
                            tracing::warn!(
                                error = %e.what,
                                retry_in = ?wait,
                                "opening the next feed stream failed"
                            );
                            renew.as_mut().reset(Instant::now() + wait);
                        }
                    }
                }
            }
        };
        shared.connected.store(false, Ordering::Relaxed);
        drop(resp);
        // Whatever ended this one (its token's expiry, most often), the next is on its way.
        if let Some(opening) = next {
            return opening.await.map(Some);
        }
        ended?;
        // Ended by the issuer at once after it opened: not its way (see `MIN_STREAM`).
        if opened.elapsed() < MIN_STREAM {
            return Err(failed("the feed ended the stream at once", None));
        }
        Ok(None)
    }
}

fn alive(shared: &Shared) {
    *shared.alive.lock().expect("alive") = Some(Instant::now());
}

fn deliver(shared: &Shared, e: &SseEvent) {
    let Some(id) = e.id.as_deref().and_then(|id| id.trim().parse::<i64>().ok()) else {
        return; // no id: not a security event (e.g. why the issuer ends the stream)
    };
    match serde_json::from_str::<SecurityEvent>(&e.data) {
        Ok(event) => apply(shared, &event),
        Err(err) => {
            tracing::warn!(id, error = %err, "unreadable feed event");
            record(shared, id);
        }
    }
}

/// Applies an event once (a resumed stream may repeat what was already seen).
fn apply(shared: &Shared, e: &SecurityEvent) {
    let mut last = shared.last_id.lock().expect("last id");
    if last.is_some_and(|l| e.id <= l) {
        return;
    }
    let effect = {
        let mut state = shared.state.write().expect("state");
        let effect = state.apply(e);
        state.prune(unix_now());
        effect
    };
    *last = Some(e.id);
    drop(last);
    if effect == Effect::RefetchKeys {
        shared.keys_changed.notify_one();
    }
}

fn record(shared: &Shared, id: i64) {
    let mut last = shared.last_id.lock().expect("last id");
    *last = Some(last.map_or(id, |l| l.max(id)));
}

#[derive(Deserialize)]
struct Page {
    events: Vec<SecurityEvent>,
    next_after: i64,
}

/// Reads every event since one token lifetime ago (long-poll pages), so that a
/// change made before this verifier started, while its tokens live, is honoured.
async fn catch_up(shared: &Shared, bearer: &str) -> Result<(), FeedError> {
    let since = unix_now() - shared.endpoints.ttl - LEEWAY - MARGIN;
    // The position is re-read from the log: after a restore from an older backup the
    // last id seen may be past the newest event, and resuming from it answers 410.
    *shared.last_id.lock().expect("last id") = None;
    let mut query = ("since", since);
    loop {
        let resp = shared
            .http
            .get(&shared.endpoints.events)
            .bearer_auth(bearer)
            .header(header::ACCEPT, "application/json")
            .query(&[query])
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::GONE => {
                query = ("since", since); // pruned meanwhile: from the time again
                continue;
            }
            status => return Err(failed(format!("the feed answered {status}"), None)),
        }
        let page: Page = resp.json().await?;
        for e in &page.events {
            apply(shared, e);
        }
        record(shared, page.next_after);
        if page.events.is_empty() {
            break;
        }
        query = ("after", page.next_after);
    }
    shared.state.write().expect("state").horizon = since;
    alive(shared);
    shared.synced.send_replace(true);
    Ok(())
}

/// Refetches the JWKS when its `max-age` runs out or a `keys.rotated` event says so.
pub(crate) async fn refresh_keys(shared: Arc<Shared>) {
    let mut failures = 0;
    loop {
        let due = *shared.jwks.expires.read().expect("jwks lock");
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = shared.keys_changed.notified() => {}
        }
        match shared.jwks.fetch().await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "JWKS fetch failed");
                *shared.jwks.expires.write().expect("jwks lock") =
                    Instant::now() + backoff(failures);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        for n in 1..20 {
            let d = backoff(n).as_millis() as u64;
            let base = (100u64 << n.min(7)).min(10_000);
            assert!(d >= base / 2 && d <= base, "{n}: {d}");
        }
    }

    #[test]
    fn the_next_stream_is_due_before_the_earliest_expiry_and_not_too_often() {
        let asked = Instant::now();
        let due = |expires_in| (renewal(asked, expires_in) - asked).as_millis();
        // An hour: 10 s before the second the token may lose to the issuer's rounding.
        assert_eq!(due(3600), 3_589_000);
        // Short tokens: half of what is left ahead, never within half a second.
        assert_eq!(due(20), 9_500);
        assert_eq!(due(4), 1_500);
        assert_eq!(due(2), 500);
        assert_eq!(due(1), 500);
        assert_eq!(due(0), 500);
    }
}
