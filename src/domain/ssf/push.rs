//! Push delivery (RFC 8935): one task per push stream, on the one instance holding
//! the stream's lease, POSTs its waiting SETs in order; a 202 removes a SET, a 400
//! with the receiver's `{err, description}` records the error and drops that SET
//! (sending the same bytes again cannot succeed), anything else is retried with a
//! jittered, growing delay, the stream's later SETs waiting behind it.
//!
//! The push client and its address guard are in [`super::guard`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::http::header;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::guard::check_url;
use super::{PUSH, Ssf, SsfError};
use crate::store::ssf as rows;

/// How long a lease lasts unless renewed. Renewed once half of it has run, which is
/// longer than one pass can take (a send, [`SEND_TIMEOUT`], then a delay,
/// [`MAX_BACKOFF`]): the holder renews it before anyone else may take it.
const LEASE_SECS: i64 = 30;
/// How long one POST may take.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest delay between two attempts at a failing receiver.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the tasks look again without being woken (other instances' changes).
const TICK: Duration = Duration::from_millis(500);

/// Where a stream's task hands a SET its receiver accepted (stream, `jti`): the worker's
/// [`remove_delivered`] removes what has gathered from all streams in one transaction,
/// so delivering to many streams costs one commit, not one per SET. The task goes on
/// with its next SET at once (it remembers how far it got); should the instance stop
/// before the removal commits, the SET is sent again with its `jti` (at least once).
type Delivered = mpsc::UnboundedSender<(String, String)>;

/// What one POST came to.
enum Sent {
    /// 202: the receiver has it.
    Accepted,
    /// 400 with the receiver's RFC 8935 error: it will never take this SET.
    Rejected(Value),
    /// Unreachable, timed out, or another status: try again later.
    Failed(Value),
}

impl Ssf {
    /// Gives up this instance's leases (a clean shutdown), so that the next start or
    /// another instance pushes at once instead of after the lease expires.
    /// Called once the server is closing ([`EventBus::is_closing`]), so no new take starts.
    ///
    /// [`EventBus::is_closing`]: crate::domain::events::EventBus::is_closing
    pub async fn release_leases(&self) {
        let _no_take_in_flight = self.lease_gate.write().await;
        if let Err(e) = rows::release_leases(self.db.writer(), &self.instance).await {
            tracing::warn!(error = %e, "releasing SSF leases");
        }
    }

    async fn send(&self, url: &str, authorization: Option<&str>, set: String) -> Sent {
        let now = self.clock.now();
        let mut req = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/secevent+jwt")
            .header(header::ACCEPT, "application/json")
            .body(set);
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Sent::Failed(
                    json!({"err": "unreachable", "description": format!("{what}: {}", crate::error_chain(&e)), "at": now}),
                );
            }
        };
        let status = resp.status().as_u16();
        if status == 202 {
            return Sent::Accepted;
        }
        // The receiver's body is read only so far: a hostile one cannot make us buffer much.
        let body = read_limited(resp, 4096).await;
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let text = |k: &str, n: usize| -> Option<String> {
            parsed
                .as_ref()?
                .get(k)?
                .as_str()
                .map(|s| s.chars().take(n).collect())
        };
        let err = text("err", 64);
        let description = text("description", 256).unwrap_or_default();
        match (status, err) {
            (400, Some(err)) => Sent::Rejected(
                json!({"err": err, "description": description, "status": 400, "at": now}),
            ),
            (_, err) => Sent::Failed(json!({
                "err": err.unwrap_or_else(|| "unexpected_status".into()),
                "description": if description.is_empty() { format!("the receiver answered {status}") } else { description },
                "status": status,
                "at": now,
            })),
        }
    }

    /// One pass over stream `id`: renew the lease, push what waits after `sent` (the
    /// worker mints). Returns `None` when this instance should stop serving the stream
    /// (gone, not push, disabled with nothing left, or the lease is another's), else
    /// whether it should go on at once.
    async fn push_pass(
        &self,
        id: &str,
        pass: &mut Pass,
        delivered: &Delivered,
    ) -> Result<Option<bool>, SsfError> {
        let Pass {
            failures,
            lease_until,
            sent,
        } = pass;
        let now = self.clock.now();
        // Not on every pass: a write per pass would cost every stream a commit per event.
        if now + LEASE_SECS / 2 >= *lease_until {
            // Shutting down: a lease taken now would outlive its release and hold the
            // stream from the next start until it expires. Checked under the gate, which
            // the release waits for.
            let _gate = self.lease_gate.read().await;
            if self.events.is_closing() {
                return Ok(None);
            }
            if !rows::take_lease(self.db.writer(), id, &self.instance, now, now + LEASE_SECS)
                .await?
            {
                return Ok(None);
            }
            *lease_until = now + LEASE_SECS;
        }
        let Some((row, mut waiting)) = rows::with_pending(&self.db.read, id, *sent, 2).await?
        else {
            return Ok(None);
        };
        let config = Self::config_of(&row)?;
        if config.delivery.method != PUSH {
            return Ok(None);
        }
        // Disabled by tessera, a stream still pushes the `stream-updated` SET it holds (the
        // only SET a disabled stream holds); it stops once that is removed, not merely
        // sent (a task started again would send it again).
        if row.status == "disabled"
            && waiting.is_empty()
            && rows::count_pending(&self.db.read, id).await? == 0
        {
            return Ok(None);
        }
        if row.status == "paused" {
            return Ok(Some(false));
        }
        // Go on at once after this SET only if there is more to send.
        let more = waiting.len() > 1;
        waiting.truncate(1);
        let Some(next) = waiting.pop() else {
            return Ok(Some(false));
        };
        let url = config.delivery.endpoint_url.clone().unwrap_or_default();
        // Checked again at each send: the setting may have changed since the stream was
        // configured, and a literal address never goes through the resolver's check.
        let guard = check_url(&url, self.cfg.ssf_allow_insecure_push);
        let outcome = match (guard, self.authorization(id, &config.delivery)) {
            (Err(why), _) => {
                Sent::Failed(json!({"err": "endpoint_refused", "description": why, "at": now}))
            }
            (Ok(()), Ok(authorization)) => {
                self.send(&url, authorization.as_deref(), self.sign(&next.claims)?)
                    .await
            }
            (Ok(()), Err(why)) => Sent::Failed(
                json!({"err": "authorization_unreadable", "description": why, "at": now}),
            ),
        };
        match outcome {
            Sent::Accepted => {
                *failures = 0;
                *sent = next.seq;
                if let Err(mpsc::error::SendError(one)) = delivered.send((id.to_string(), next.jti))
                {
                    // The worker is stopping: remove it here.
                    self.remove_delivered(std::slice::from_ref(&one)).await?;
                }
                Ok(Some(more))
            }
            Sent::Rejected(error) => {
                *failures = 0;
                let mut tx = self.db.begin_plain().await?;
                rows::delete_pending(&mut tx, id, &next.jti).await?;
                rows::record_error(&mut tx, id, &error.to_string(), 1).await?;
                tx.commit().await.map_err(crate::store::StoreError::from)?;
                Ok(Some(true))
            }
            Sent::Failed(error) => {
                *failures += 1;
                rows::record_error(self.db.writer(), id, &error.to_string(), 1).await?;
                tokio::time::sleep(backoff(*failures)).await;
                Ok(Some(true))
            }
        }
    }

    /// Removes SETs their receivers accepted, `(stream, jti)`, in one transaction, and
    /// counts them delivered.
    async fn remove_delivered(&self, accepted: &[(String, String)]) -> Result<(), SsfError> {
        // By id, in the order minting locks the streams' rows (see `mint_many`).
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        let mut tx = self.db.begin_plain().await?;
        for (id, jti) in accepted {
            if rows::delete_pending(&mut tx, id, jti).await? {
                *counts.entry(id).or_default() += 1;
            }
        }
        for (id, n) in counts {
            rows::count_delivered(&mut tx, id, n).await?;
        }
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        Ok(())
    }

    /// Serves push stream `id` while this instance holds its lease.
    async fn push_stream(self, id: String, mut wake: watch::Receiver<u64>, delivered: Delivered) {
        let mut pass = Pass {
            failures: 0,
            lease_until: i64::MIN,
            sent: 0,
        };
        loop {
            wake.borrow_and_update();
            match self.push_pass(&id, &mut pass, &delivered).await {
                Ok(None) => return,
                Ok(Some(true)) => continue,
                Ok(Some(false)) => {}
                Err(e) => tracing::warn!(stream = %id, error = %crate::error_chain(&e), "SSF push"),
            }
            if self.events.is_closing() {
                return;
            }
            // The worker mints on every wake and tick, then says so: wait for that.
            if wake.changed().await.is_err() {
                return;
            }
        }
    }
}

/// What a stream's task carries from one pass to the next.
struct Pass {
    /// Failed attempts in a row (the backoff).
    failures: u32,
    /// Until when this instance's lease holds, as last taken.
    lease_until: i64,
    /// The `seq` of the last SET accepted: it may still wait for its removal.
    sent: i64,
}

/// Removes the SETs the stream tasks hand over, whatever has gathered since the last
/// commit in one transaction; a failed removal is tried again with what came since.
async fn remove_delivered(ssf: Ssf, mut accepted: mpsc::UnboundedReceiver<(String, String)>) {
    let mut batch = Vec::new();
    while accepted.recv_many(&mut batch, 4096).await > 0 {
        match ssf.remove_delivered(&batch).await {
            Ok(()) => batch.clear(),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "SSF removing delivered SETs");
                tokio::time::sleep(TICK).await;
            }
        }
    }
}

/// The delay before attempt `failures + 1`: 100 ms doubling up to [`MAX_BACKOFF`],
/// each drawn at random between half and all of it (so receivers coming back are not
/// hit by every stream at once).
fn backoff(failures: u32) -> Duration {
    let full = Duration::from_millis(100)
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let [r] = crate::crypto::random::<1>();
    full / 2 + full / 2 * u32::from(r) / 255
}

async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

/// The stream tasks of the worker and its remover: stopped with it (the background's
/// abort at shutdown).
#[derive(Default)]
struct Tasks(HashMap<String, JoinHandle<()>>, Option<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in self.0.values().chain(&self.1) {
            task.abort();
        }
    }
}

/// The push worker of one instance: starts a task for each push stream whose lease
/// it can take, as streams appear and as leases of other instances expire; on every
/// wake-up mints, in one transaction, for every push stream it holds (or nobody
/// does), then wakes the tasks to send.
pub async fn run(ssf: Ssf) {
    let mut wake = ssf.events.subscribe();
    let (minted, _) = watch::channel(0u64);
    let mut tasks = Tasks::default();
    let (delivered, accepted) = mpsc::unbounded_channel();
    tasks.1 = Some(tokio::spawn(remove_delivered(ssf.clone(), accepted)));
    loop {
        // Shutting down: the tasks have stopped; started again, they would take leases
        // after this instance gave them back.
        if ssf.events.is_closing() {
            return;
        }
        wake.borrow_and_update();
        tasks.0.retain(|_, t| !t.is_finished());
        let mut more = false;
        match rows::live(&ssf.db.read).await {
            Ok(streams) => {
                let now = ssf.clock.now();
                let mut ours = Vec::new();
                for row in streams {
                    let push = Ssf::config_of(&row).is_ok_and(|c| c.delivery.method == PUSH);
                    // Another instance's live lease: not ours to try until it expires.
                    let elsewhere = row
                        .lease_owner
                        .as_deref()
                        .is_some_and(|o| o != &*ssf.instance)
                        && row.lease_until.is_some_and(|until| until >= now);
                    if !push || elsewhere {
                        continue;
                    }
                    if !tasks.0.contains_key(&row.id) {
                        let task = tokio::spawn(ssf.clone().push_stream(
                            row.id.clone(),
                            minted.subscribe(),
                            delivered.clone(),
                        ));
                        tasks.0.insert(row.id.clone(), task);
                    }
                    ours.push(row);
                }
                match ssf.mint_many(&ours).await {
                    Ok(unread) => more = unread,
                    Err(e) => tracing::warn!(error = %crate::error_chain(&e), "SSF minting"),
                }
                minted.send_modify(|n| *n = n.wrapping_add(1));
            }
            Err(e) => tracing::warn!(error = %e, "SSF push worker"),
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = wake.changed() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_before_anyone_else_may_take_it() {
        // The longest pass starts just before renewal is due and must end before expiry.
        let longest_pass = (SEND_TIMEOUT + MAX_BACKOFF).as_secs() as i64 + 1;
        assert!(LEASE_SECS / 2 > longest_pass);
    }

    #[test]
    fn the_backoff_grows_with_jitter_and_is_capped() {
        assert!(
            backoff(1) >= Duration::from_millis(50) && backoff(1) <= Duration::from_millis(100)
        );
        assert!(backoff(4) >= Duration::from_millis(400));
        assert!(backoff(40) <= MAX_BACKOFF);
    }
}
