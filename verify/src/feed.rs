//! Following `GET /events`: a catch-up of one token lifetime (JSON long-poll with
//! `since`), then an SSE stream resumed with `Last-Event-ID`, renewed with a fresh
//! client-credentials token before the old one expires (the issuer ends a stream at
//! its token's `exp`), and reconnected with jittered backoff after a failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
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
/// Seconds of margin on the catch-up's start, beyond the token lifetime and leeway
/// (event times are whole seconds, taken just before their transaction commits).
const MARGIN: i64 = 5;

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

fn failed(what: impl Into<String>, retry_after: Option<Duration>) -> FeedError {
    FeedError {
        what: what.into(),
        retry_after,
    }
}

/// The verifier's own client-credentials token for the feed.
#[derive(Default)]
struct ClientToken {
    value: Option<String>,
    renew_at: Option<Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ClientToken {
    async fn get(&mut self, shared: &Shared) -> Result<String, FeedError> {
        match (&self.value, self.renew_at) {
            (Some(v), Some(at)) if Instant::now() < at => Ok(v.clone()),
            _ => self.renew(shared).await,
        }
    }

    async fn renew(&mut self, shared: &Shared) -> Result<String, FeedError> {
        let s = &shared.settings;
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
        // Renew at three quarters of the lifetime: well before the issuer ends the stream.
        let renew_in = Duration::from_millis(t.expires_in * 750);
        self.renew_at = Some(Instant::now() + renew_in);
        self.value = Some(t.access_token.clone());
        Ok(t.access_token)
    }
}

/// Runs for the verifier's life.
pub(crate) async fn follow(shared: Arc<Shared>) {
    let mut token = ClientToken::default();
    let mut failures: u32 = 0;
    let mut resync = true;
    loop {
        let outcome = session(&shared, &mut token, &mut resync).await;
        shared.connected.store(false, Ordering::Relaxed);
        match outcome {
            // The stream ended (by the issuer, or to renew the token): resume at once.
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = e.retry_after.unwrap_or_else(|| backoff(failures));
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

async fn session(
    shared: &Shared,
    token: &mut ClientToken,
    resync: &mut bool,
) -> Result<(), FeedError> {
    let bearer = token.get(shared).await?;
    if *resync {
        catch_up(shared, &bearer).await?;
        *resync = false;
    }
    let last = *shared.last_id.lock().expect("last id");
    let mut req = shared
        .http
        .get(&shared.endpoints.events)
        .bearer_auth(&bearer)
        .header(header::ACCEPT, "text/event-stream");
    if let Some(id) = last {
        req = req.header("last-event-id", id.to_string());
    }
    let mut resp = req.send().await?;
    match resp.status() {
        StatusCode::OK => {}
        StatusCode::GONE => {
            *resync = true;
            return Err(failed(
                "the feed cannot resume from the last event id (beyond retention or past the newest event)",
                Some(Duration::ZERO),
            ));
        }
        StatusCode::UNAUTHORIZED => {
            *token = ClientToken::default();
            return Err(failed("the feed refused the verifier's token", None));
        }
        status => {
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .map(Duration::from_secs);
            return Err(failed(format!("the feed answered {status}"), retry_after));
        }
    }
    shared.connected.store(true, Ordering::Relaxed);
    shared.connections.fetch_add(1, Ordering::Relaxed);
    alive(shared);
    let mut parser = Parser::default();
    let mut renew_at = token.renew_at.unwrap_or_else(Instant::now);
    loop {
        tokio::select! {
            chunk = tokio::time::timeout(IDLE, resp.chunk()) => match chunk {
                Err(_) => return Err(failed("the feed went silent", Some(Duration::ZERO))),
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(bytes))) => {
                    alive(shared);
                    for e in parser.feed(&bytes) {
                        deliver(shared, &e);
                    }
                }
            },
            () = tokio::time::sleep_until(renew_at) => match token.renew(shared).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e.what, "renewing the feed token failed; retrying");
                    renew_at = Instant::now() + Duration::from_secs(1);
                }
            },
        }
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
}
