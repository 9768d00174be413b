//! Refresh families (sessions) and rotation: what happens when a refresh token
//! is used, reused, or retried within the grace window.

use crate::crypto::{self, sha256};
use crate::error::OAuthError;
use crate::store::events::NewEvent;
use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use crate::store::Db;
use crate::store::sessions::{Consume, FamilyRow, TokenRow, UserState};
use crate::store::{self, StoreError, to_json};

use super::Core;
use super::clients::Client;
use std::time::Duration;

pub const REASON_REUSE: &str = "refresh_token_reuse";

/// Starts a family for a fresh sign-in; returns its id (`sid`) and first refresh
/// token, or `None` when the user is no longer enabled at `authz_version` (the
/// sign-in read a state that a password change, disable or role change has since
/// replaced: its session would outlive the revocation that change made).
pub async fn start(
    core: &Core,
    user_id: &str,
    authz_version: i64,
    client_id: &str,
    scope: &str,
    audience: &[String],
) -> Result<Option<(String, String)>, StoreError> {
    let now = store::now();
    let family = FamilyRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.into(),
        client_id: client_id.into(),
        scope: scope.into(),
        audience: to_json(audience),
        created_at: now,
        last_used_at: now,
        expires_at: now + core.cfg.refresh_max_ttl.as_secs() as i64,
        revoked_at: None,
    };
    let token = crypto::random_token();
    let mut tx = core.db.begin_plain().await?;
    if !store::sessions::insert_family_if_current(&mut tx, &family, authz_version).await? {
        return Ok(None);
    }
    store::sessions::insert_token(&mut tx, &sha256(token.as_bytes()), &family.id, scope, now)
        .await?;
    tx.commit().await?;
    Ok(Some((family.id, token)))
}

pub struct Rotated<T> {
    pub family: FamilyRow,
    pub user: UserState,
    pub refresh_token: String,
    pub granted: T,
}

/// The key that seals a successor for the grace window: derived from the
/// presented token, which the database never holds, so the database alone never
/// yields a usable refresh token.
fn grace_key(presented: &str) -> [u8; 32] {
    sha256(format!("tessera.grace.v1:{presented}").as_bytes())
}

const INVALID: OAuthError =
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked");

/// Checks that apply whatever the token's state: right client, live family, live user.
fn validate(core: &Core, row: &TokenRow, client_id: &str, now: i64) -> Result<(), OAuthError> {
    let family = &row.family;
    // A token presented by another client is refused without touching the family (RFC 6749 §10.4).
    if family.client_id != client_id || family.revoked_at.is_some() {
        return Err(INVALID);
    }
    let idle = core.cfg.refresh_idle_ttl.as_secs() as i64;
    if now >= family.expires_at || now >= family.last_used_at + idle {
        return Err(INVALID);
    }
    if row.user.disabled {
        return Err(INVALID);
    }
    Ok(())
}

/// Rotates `presented`: consumes it and returns its successor. `check` validates
/// the request against the family before anything is consumed.
///
/// - first use: one conditional `UPDATE ... WHERE consumed_at IS NULL` consumes the
///   token; a trigger inserts the successor and touches the family in the same
///   statement. Exactly one concurrent caller can win it;
/// - a retry within the grace window while the successor is still the family's
///   live head: the same successor again (idempotent; the family never branches);
/// - any other reuse: the whole family is revoked (RFC 9700 §4.14.2) and a
///   `session.revoked` event is written.
pub async fn rotate<T>(
    core: &Core,
    client: &Client,
    presented: &str,
    check: impl Fn(&FamilyRow) -> Result<T, OAuthError>,
) -> Result<Rotated<T>, OAuthError> {
    let client_id = client.id.as_str();
    let grace = client
        .refresh_reuse_grace
        .unwrap_or(core.cfg.refresh_reuse_grace);
    let hash = sha256(presented.as_bytes());
    let now = store::now();
    // Fast path: read on the reader pool, then one statement on the writer.
    let Some(row) = store::sessions::token(&core.db.read, &hash).await? else {
        return Err(INVALID);
    };
    if row.consumed_at.is_none() {
        validate(core, &row, client_id, now)?;
        let granted = check(&row.family)?;
        let (next, next_hash, sealed) = successor(grace, presented);
        if core.rotations.consume((hash, next_hash, sealed, now)).await {
            return Ok(Rotated {
                family: row.family,
                user: row.user,
                refresh_token: next,
                granted,
            });
        }
        // Lost a race, or the family was revoked meanwhile: decide under the write lock.
    }
    let grace = grace.as_secs() as i64;
    store::retry_conflicts(|| rotate_locked(core, client_id, grace, presented, &hash, now, &check))
        .await
}

/// A fresh successor token, its hash, and (with a grace window) its sealed copy.
fn successor(grace: Duration, presented: &str) -> (String, [u8; 32], Option<Vec<u8>>) {
    let next = crypto::random_token();
    let next_hash = sha256(next.as_bytes());
    let sealed = (!grace.is_zero())
        .then(|| crypto::seal(&grace_key(presented), &next_hash, next.as_bytes()));
    (next, next_hash, sealed)
}

/// The slow path, in one write transaction: retries, reuse, and lost races.
async fn rotate_locked<T>(
    core: &Core,
    client_id: &str,
    grace: i64,
    presented: &str,
    hash: &[u8; 32],
    now: i64,
    check: impl Fn(&FamilyRow) -> Result<T, OAuthError>,
) -> Result<Rotated<T>, OAuthError> {
    let mut tx = core.db.begin().await?;
    let Some(row) = store::sessions::token_for_update(&mut tx, hash).await? else {
        return Err(INVALID);
    };
    validate(core, &row, client_id, now)?;
    let user = row.user;
    let family = row.family;
    // The request is checked for a first use or a retry only: reuse is reuse,
    // whatever else the request says, so a stolen token cannot probe quietly.
    let (next, granted) = match (row.consumed_at, row.successor_hash, row.successor_sealed) {
        (None, _, _) => {
            let granted = check(&family)?;
            let (next, next_hash, sealed) = successor(Duration::from_secs(grace as u64), presented);
            if !store::sessions::consume(&mut tx, hash, &next_hash, sealed.as_deref(), now).await? {
                // Unreachable under the write lock; refuse rather than branch.
                return Err(INVALID);
            }
            (next, granted)
        }
        (Some(consumed_at), Some(next_hash), Some(sealed))
            // Never negative: a clock stepped backwards must not widen the window.
            if (0..=grace).contains(&(now - consumed_at))
                && store::sessions::is_unconsumed(&mut tx, &next_hash).await? =>
        {
            let granted = check(&family)?;
            let next = crypto::open(&grace_key(presented), &next_hash, &sealed)
                .map_err(|e| OAuthError::Internal(Box::new(e)))?;
            store::sessions::touch_family(&mut tx, &family.id, now).await?;
            // Whoever replays a just-used token in the window gets the live
            // successor: a public client's thief as well as a retrying tab.
            core.metrics.refresh_grace_replay();
            tracing::warn!(sid = %family.id, client_id, age_s = now - consumed_at, "refresh token replayed within the grace window: successor handed out again");
            (
                String::from_utf8(next).map_err(|e| OAuthError::Internal(Box::new(e)))?,
                granted,
            )
        }
        _ => {
            revoke_family(&mut tx, &family, REASON_REUSE).await?;
            tx.commit().await?;
            core.events.wake();
            core.metrics.refresh_reuse();
            core.metrics.session_revoked(REASON_REUSE);
            tracing::warn!(sid = %family.id, client_id, "refresh token reuse: family revoked");
            return Err(INVALID);
        }
    };
    tx.commit().await?;
    Ok(Rotated {
        family,
        user,
        refresh_token: next,
        granted,
    })
}

/// Revokes a family and records it in the event log, inside the caller's transaction.
pub async fn revoke_family(
    tx: &mut store::Tx,
    family: &FamilyRow,
    reason: &str,
) -> Result<bool, StoreError> {
    let now = store::now();
    if !store::sessions::revoke_family(&mut *tx, &family.id, reason, now).await? {
        return Ok(false);
    }
    let event = NewEvent {
        kind: "session.revoked",
        sub: Some(&family.user_id),
        sid: Some(&family.id),
        reason: Some(reason),
        ..Default::default()
    };
    store::events::append(tx, &event, now).await?;
    Ok(true)
}

/// Group commit for rotations: first uses of refresh tokens queue here, and one
/// task consumes whatever has queued in one statement on the writer connection.
/// Under load that is one database round trip (and one WAL commit) for many
/// rotations instead of one each; alone, a request waits for nobody.
pub struct Rotations {
    jobs: mpsc::Sender<(Consume, oneshot::Sender<bool>)>,
}

/// Most rotations consumed by one statement.
const BATCH: usize = 64;

impl Rotations {
    pub fn start(db: Db) -> Self {
        let (jobs, mut rx) = mpsc::channel::<(Consume, oneshot::Sender<bool>)>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                // A token twice in one batch: only its first request may try; the
                // others take the locked path (grace window or reuse).
                let mut seen = HashSet::new();
                let (unique, dups): (Vec<_>, Vec<_>) =
                    batch.into_iter().partition(|(c, _)| seen.insert(c.0));
                for (_, reply) in dups {
                    let _ = reply.send(false);
                }
                let (rows, replies): (Vec<Consume>, Vec<_>) = unique.into_iter().unzip();
                // On error everyone takes the locked path, which reports it properly.
                let won: HashSet<Vec<u8>> = store::sessions::consume_many(db.writer(), &rows)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                for (c, reply) in rows.iter().zip(replies) {
                    let _ = reply.send(won.contains(c.0.as_slice()));
                }
            }
        });
        Self { jobs }
    }

    /// Whether this request consumed the token.
    async fn consume(&self, job: Consume) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send((job, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
