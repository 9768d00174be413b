//! The security event log as stored: append-only, ids in commit order.

use sqlx::FromRow;

use super::{Backend, Exec, NOTIFY_CHANNEL, StoreError, on};

/// One row of the append-only security event log.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    /// Strictly increasing; subscribers resume after it.
    pub id: i64,
    /// The event type's wire name (the domain's `EventKind`).
    #[sqlx(rename = "type")]
    pub kind: String,
    /// The user concerned, if any.
    pub sub: Option<String>,
    /// The refresh family concerned, if any.
    pub sid: Option<String>,
    /// The user's `authz_version` after the change, if it changed.
    pub ver: Option<i64>,
    /// JSON list of the user's roles after a role change.
    pub roles: Option<String>,
    /// Why it happened (`refresh_token_reuse`, `revoked_by_admin`, `password_changed`, ...).
    pub reason: Option<String>,
    /// The signing key of a key event.
    pub kid: Option<String>,
    /// When it was written, Unix seconds.
    pub at: i64,
}

/// An event to [`append`]; the id and time are the log's. Fields as in [`EventRow`].
#[derive(Debug, Default, Clone)]
pub struct NewEvent<'a> {
    /// The event type's wire name.
    pub kind: &'a str,
    /// The user concerned, if any.
    pub sub: Option<&'a str>,
    /// The refresh family concerned, if any.
    pub sid: Option<&'a str>,
    /// The user's `authz_version` after the change.
    pub ver: Option<i64>,
    /// JSON list of the user's roles after the change.
    pub roles: Option<String>,
    /// Why it happened.
    pub reason: Option<&'a str>,
    /// The signing key of a key event; other instances are then told `keys` changed,
    /// not `events`.
    pub kid: Option<&'a str>,
}

/// Appends an event inside the caller's write transaction ([`super::Db::begin`],
/// whose lock keeps ids in commit order). On PostgreSQL it also notifies every
/// instance; the notification is delivered when the transaction commits.
pub async fn append(
    db: impl Into<Exec<'_>>,
    e: &NewEvent<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    let mut db = db.into();
    let (id,): (i64,) = on!(db.re(), |x| sqlx::query_as(
        "INSERT INTO security_events (type, sub, sid, ver, roles, reason, kid, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(e.kind)
    .bind(e.sub)
    .bind(e.sid)
    .bind(e.ver)
    .bind(&e.roles)
    .bind(e.reason)
    .bind(e.kid)
    .bind(now)
    .fetch_one(x)
    .await)?;
    let what = if e.kid.is_some() { "keys" } else { "events" };
    notify(db, what).await?;
    Ok(id)
}

/// Tells every instance listening on PostgreSQL that `what` changed (at commit);
/// nothing on SQLite, where other processes are noticed by polling.
pub async fn notify(db: impl Into<Exec<'_>>, what: &str) -> Result<(), StoreError> {
    let db = db.into();
    if db.backend() == Backend::Postgres {
        on!(db, |x| sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(what)
            .execute(x)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Events strictly after `after`, oldest first, optionally only one subject's.
pub async fn after(
    db: impl Into<Exec<'_>>,
    after: i64,
    sub: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(on!(db.into(), |x| sqlx::query_as(
        "SELECT id, type, sub, sid, ver, roles, reason, kid, at FROM security_events
         WHERE id > $1 AND ($2 IS NULL OR sub = $2) ORDER BY id LIMIT $3",
    )
    .bind(after)
    .bind(sub)
    .bind(limit)
    .fetch_all(x)
    .await)?)
}

/// The newest event id, 0 when the log is empty.
pub async fn last_id(db: impl Into<Exec<'_>>) -> Result<i64, StoreError> {
    let (id,): (Option<i64>,) = on!(db.into(), |x| sqlx::query_as(
        "SELECT MAX(id) FROM security_events"
    )
    .fetch_one(x)
    .await)?;
    Ok(id.unwrap_or(0))
}

/// The id to read after so as to get every event at or after `at` (UNIX seconds):
/// the newest id older than `at`, else the newest pruned one (0 if none).
pub async fn last_before(db: impl Into<Exec<'_>>, at: i64) -> Result<i64, StoreError> {
    let mut db = db.into();
    let (id,): (Option<i64>,) = on!(db.re(), |x| sqlx::query_as(
        "SELECT MAX(id) FROM security_events WHERE at < $1"
    )
    .bind(at)
    .fetch_one(x)
    .await)?;
    match id {
        Some(id) => Ok(id),
        None => pruned_through(db).await,
    }
}

/// The newest id removed by retention (0 if none): resuming from before it must resynchronise.
pub async fn pruned_through(db: impl Into<Exec<'_>>) -> Result<i64, StoreError> {
    let v = super::keys::meta(db, "events_pruned_through").await?;
    Ok(v.and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0))
}

/// Deletes events older than `before` (always keeping the newest, whose id anchors
/// resumption) and records the newest id removed.
pub async fn prune(db: impl Into<Exec<'_>>, before: i64) -> Result<u64, StoreError> {
    let mut db = db.into();
    let (max,): (Option<i64>,) = on!(db.re(), |x| {
        sqlx::query_as(
        "SELECT MAX(id) FROM security_events WHERE at < $1 AND id < (SELECT MAX(id) FROM security_events)",
    )
    .bind(before)
    .fetch_one(x)
    .await
    })?;
    let Some(max) = max else { return Ok(0) };
    let n = on!(db.re(), |x| sqlx::query(
        "DELETE FROM security_events WHERE id <= $1"
    )
    .bind(max)
    .execute(x)
    .await
    .map(|r| r.rows_affected()))?;
    super::keys::set_meta(db, "events_pruned_through", &max.to_be_bytes()).await?;
    Ok(n)
}
