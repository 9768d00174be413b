//! The web console's own rows: its sign-ins, its client's redirect URI, and the feed's reach
//! (each instance's open `/events` streams, published about once a second).

use super::{Exec, StoreError, on};

/// Stores a console sign-in by the SHA-256 of its cookie; times are Unix seconds.
pub async fn insert_session(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    user_id: &str,
    sid: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO console_sessions (hash, user_id, sid, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(sid)
    .bind(now)
    .bind(expires_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// An unexpired console sign-in's user and tessera session (`sid`).
pub async fn session(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT user_id, sid FROM console_sessions WHERE hash = $1 AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(e)
    .await)?)
}

/// Ends a console sign-in (sign-out), and any that expired before `now`.
pub async fn delete_session(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "DELETE FROM console_sessions WHERE hash = $1 OR expires_at <= $2"
    )
    .bind(hash)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces this instance's published subscribers (JSON) at `now`, and forgets the rows of
/// instances that stopped refreshing before `stale_before`.
pub async fn publish_reach(
    db: impl Into<Exec<'_>>,
    instance: &str,
    subscribers: &str,
    now: i64,
    stale_before: i64,
) -> Result<(), StoreError> {
    let mut db = db.into();
    on!(db.re(), |e| sqlx::query(
        "INSERT INTO feed_reach (instance, refreshed_at, subscribers) VALUES ($1, $2, $3)
         ON CONFLICT (instance) DO UPDATE
         SET refreshed_at = excluded.refreshed_at, subscribers = excluded.subscribers",
    )
    .bind(instance)
    .bind(now)
    .bind(subscribers)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    forget_stale_reach(db, stale_before).await
}

/// Moves this instance's row's refresh time to `now`, its subscribers as they are, and
/// forgets rows refreshed before `stale_before`; false if the row is gone (taken away as
/// stale while this instance was stalled), to be published anew.
pub async fn touch_reach(
    db: impl Into<Exec<'_>>,
    instance: &str,
    now: i64,
    stale_before: i64,
) -> Result<bool, StoreError> {
    let mut db = db.into();
    let touched = on!(db.re(), |e| sqlx::query(
        "UPDATE feed_reach SET refreshed_at = $2 WHERE instance = $1"
    )
    .bind(instance)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    forget_stale_reach(db, stale_before).await?;
    Ok(touched > 0)
}

/// Forgets the rows of instances that stopped refreshing before `stale_before`.
async fn forget_stale_reach(db: Exec<'_>, stale_before: i64) -> Result<(), StoreError> {
    on!(db, |e| sqlx::query(
        "DELETE FROM feed_reach WHERE refreshed_at < $1"
    )
    .bind(stale_before)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Takes this instance's row away (a clean shutdown).
pub async fn withdraw_reach(db: impl Into<Exec<'_>>, instance: &str) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "DELETE FROM feed_reach WHERE instance = $1"
    )
    .bind(instance)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every instance's published subscribers refreshed at or after `fresh_since`:
/// (instance, refreshed_at, JSON), by instance.
pub async fn reach(
    db: impl Into<Exec<'_>>,
    fresh_since: i64,
) -> Result<Vec<(String, i64, String)>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT instance, refreshed_at, subscribers FROM feed_reach
         WHERE refreshed_at >= $1 ORDER BY instance",
    )
    .bind(fresh_since)
    .fetch_all(e)
    .await)?)
}

/// The newest event id of one user (`sub`), 0 when they have none.
pub async fn last_event_of(db: impl Into<Exec<'_>>, sub: &str) -> Result<i64, StoreError> {
    let (id,): (Option<i64>,) = on!(db.into(), |x| sqlx::query_as(
        "SELECT MAX(id) FROM security_events WHERE sub = $1"
    )
    .bind(sub)
    .fetch_one(x)
    .await)?;
    Ok(id.unwrap_or(0))
}
