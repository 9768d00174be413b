//! Poll delivery (RFC 8936): the receiver acknowledges what it has, reports what it
//! rejected, and gets the oldest SETs still waiting, at once or as soon as one exists.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;

use super::{POLL, Ssf, SsfError, invalid};
use crate::store::StoreError;
use crate::store::ssf as rows;

/// Most SETs one poll returns, and most `ack`/`setErrs` entries it takes.
pub const MAX_EVENTS: usize = 1000;
/// SETs a poll returns when `maxEvents` is absent.
const DEFAULT_EVENTS: usize = 100;

/// One `setErrs` entry: why the receiver rejected a SET (RFC 8936 §2.4.3).
#[derive(Debug, Deserialize)]
pub struct SetErr {
    /// The RFC 8935 §2.4 error code.
    pub err: String,
    /// Its explanation.
    #[serde(default)]
    pub description: Option<String>,
}

/// A poll request's body (RFC 8936 §2.4).
#[derive(Debug, Default, Deserialize)]
pub struct PollRequest {
    /// At most this many SETs; 0 = only acknowledge.
    #[serde(rename = "maxEvents", default, deserialize_with = "count")]
    pub max_events: Option<u64>,
    /// `false` (the default): wait until a SET exists.
    #[serde(rename = "returnImmediately", default, deserialize_with = "present")]
    pub return_immediately: Option<bool>,
    /// The `jti`s of SETs the receiver has.
    #[serde(default)]
    pub ack: Vec<String>,
    /// The `jti`s of SETs it rejected, and why.
    #[serde(rename = "setErrs", default)]
    pub set_errs: BTreeMap<String, SetErr>,
}

/// A member that, when present, must hold a value (`null` is no boolean).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A count, present: a JSON number with no fraction, `5.0` as well as `5`, as JSON Schema
/// counts integers.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(f))
                .map(|f| f as u64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("maxEvents must be a non-negative integer"))
}

/// A poll response: `{"sets": {jti: SET, ...}, "moreAvailable": bool}`, the SETs in
/// the stream's order.
#[derive(Debug, Serialize)]
pub struct PollResponse {
    /// `jti` → the signed SET.
    #[serde(serialize_with = "in_order")]
    pub sets: Vec<(String, String)>,
    /// More are waiting.
    #[serde(rename = "moreAvailable")]
    pub more_available: bool,
}

fn in_order<S: Serializer>(sets: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(sets.iter().map(|(k, v)| (k, v)))
}

impl Ssf {
    /// RFC 8936 §2.4: acknowledges, records errors, then answers the oldest waiting
    /// SETs; an unacknowledged SET is answered again on the next poll.
    pub async fn poll(
        &self,
        client: &str,
        id: &str,
        req: PollRequest,
    ) -> Result<PollResponse, SsfError> {
        if req.ack.len() > MAX_EVENTS || req.set_errs.len() > MAX_EVENTS {
            return Err(invalid(format!(
                "at most {MAX_EVENTS} ack and setErrs entries"
            )));
        }
        let row = self.owned(client, id).await?;
        if Self::config_of(&row)?.delivery.method != POLL {
            return Err(invalid("this stream is delivered by push, not poll"));
        }
        let mut tx = self.db.begin_plain().await?;
        let mut acked = 0;
        // A jti with NUL was never minted (and PostgreSQL text cannot hold one).
        let minted = |jti: &&String| !jti.contains('\0');
        for jti in req.ack.iter().filter(minted) {
            acked += i64::from(rows::delete_pending(&mut tx, id, jti).await?);
        }
        rows::count_delivered(&mut tx, id, acked).await?;
        if let Some((jti, e)) = req.set_errs.iter().last() {
            for jti in req.set_errs.keys().filter(minted) {
                rows::delete_pending(&mut tx, id, jti).await?;
            }
            let description: String = e
                .description
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(256)
                .collect();
            let error = json!({"err": e.err.chars().take(64).collect::<String>(), "description": description, "jti": jti, "at": self.clock.now()});
            rows::record_error(&mut tx, id, &error.to_string(), req.set_errs.len() as i64).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        let max = req
            .max_events
            .map_or(DEFAULT_EVENTS, |m| (m as usize).min(MAX_EVENTS));
        let empty = PollResponse {
            sets: Vec::new(),
            more_available: false,
        };
        if max == 0 {
            return Ok(empty);
        }
        let immediately = req.return_immediately.unwrap_or(false);
        // Real (monotonic) time bounds the wait; no rule reads it.
        let deadline = tokio::time::Instant::now() + self.cfg.ssf_poll_wait;
        let mut wake = self.events.subscribe();
        loop {
            wake.borrow_and_update();
            let row = self.fresh(client, id).await?;
            if row.status == "enabled" {
                let mut waiting = rows::pending(&self.db.read, id, max as i64 + 1).await?;
                let more_available = waiting.len() > max;
                waiting.truncate(max);
                if !waiting.is_empty() {
                    let sets = waiting
                        .iter()
                        .map(|p| Ok((p.jti.clone(), self.sign(&p.claims)?)))
                        .collect::<Result<_, SsfError>>()?;
                    return Ok(PollResponse {
                        sets,
                        more_available,
                    });
                }
            }
            if immediately || tokio::time::Instant::now() >= deadline || self.events.is_closing() {
                return Ok(empty);
            }
            tokio::select! {
                _ = wake.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
