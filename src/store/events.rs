use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

use super::StoreError;

/// One row of the append-only security event log.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub ver: Option<i64>,
    pub roles: Option<String>,
    pub reason: Option<String>,
    pub kid: Option<String>,
    pub at: i64,
}

#[derive(Debug, Default, Clone)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub sub: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub ver: Option<i64>,
    pub roles: Option<String>,
    pub reason: Option<&'a str>,
    pub kid: Option<&'a str>,
}

pub async fn append(
    conn: &mut SqliteConnection,
    e: &NewEvent<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO security_events (type, sub, sid, ver, roles, reason, kid, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(e.kind)
    .bind(e.sub)
    .bind(e.sid)
    .bind(e.ver)
    .bind(&e.roles)
    .bind(e.reason)
    .bind(e.kid)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Events strictly after `after`, oldest first, optionally only one subject's.
pub async fn after(
    db: impl SqliteExecutor<'_>,
    after: i64,
    sub: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, type, sub, sid, ver, roles, reason, kid, at FROM security_events
         WHERE id > ? AND (? IS NULL OR sub = ?) ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(sub)
    .bind(sub)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// The newest event id, 0 when the log is empty.
pub async fn last_id(db: impl SqliteExecutor<'_>) -> Result<i64, StoreError> {
    let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM security_events")
        .fetch_one(db)
        .await?;
    Ok(id.unwrap_or(0))
}

/// The newest id removed by retention (0 if none): resuming from before it must resynchronise.
pub async fn pruned_through(db: impl SqliteExecutor<'_>) -> Result<i64, StoreError> {
    let v = super::keys::meta(db, "events_pruned_through").await?;
    Ok(v.and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0))
}

/// Deletes events older than `before` (always keeping the newest, whose id anchors
/// resumption) and records the newest id removed.
pub async fn prune(conn: &mut SqliteConnection, before: i64) -> Result<u64, StoreError> {
    let (max,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(id) FROM security_events WHERE at < ? AND id < (SELECT MAX(id) FROM security_events)",
    )
    .bind(before)
    .fetch_one(&mut *conn)
    .await?;
    let Some(max) = max else { return Ok(0) };
    let n = sqlx::query("DELETE FROM security_events WHERE id <= ?")
        .bind(max)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    super::keys::set_meta(conn, "events_pruned_through", &max.to_be_bytes()).await?;
    Ok(n)
}
