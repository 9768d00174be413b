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

/// The oldest id still retained (0 when the log is empty).
pub async fn first_id(db: impl SqliteExecutor<'_>) -> Result<i64, StoreError> {
    let (id,): (Option<i64>,) = sqlx::query_as("SELECT MIN(id) FROM security_events")
        .fetch_one(db)
        .await?;
    Ok(id.unwrap_or(0))
}

pub async fn prune(db: impl SqliteExecutor<'_>, before: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM security_events WHERE at < ? AND id < (SELECT MAX(id) FROM security_events)",
    )
    .bind(before)
    .execute(db)
    .await?
    .rows_affected())
}
