//! The SETs waiting for delivery on each stream (`ssf_pending`), oldest first.

use sqlx::FromRow;

use super::{COLUMNS, StreamRow, count_of_stream};
use crate::store::{Exec, StoreError, on};

/// A SET waiting for delivery.
#[derive(Debug, Clone, FromRow)]
pub struct PendingRow {
    /// Its place in the stream's order.
    pub seq: i64,
    /// The SET's `jti`.
    pub jti: String,
    /// The SET's claims, JSON, signed when sent.
    pub claims: String,
}

/// Queues a SET; nothing when this `jti` is queued already (a retried mint).
pub async fn insert_pending(
    db: impl Into<Exec<'_>>,
    stream_id: &str,
    jti: &str,
    claims: &str,
) -> Result<(), StoreError> {
    exec!(
        db,
        "INSERT INTO ssf_pending (stream_id, jti, claims) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        stream_id,
        jti,
        claims
    )?;
    Ok(())
}

/// The oldest `limit` SETs waiting on a stream.
pub async fn pending(
    db: impl Into<Exec<'_>>,
    stream_id: &str,
    limit: i64,
) -> Result<Vec<PendingRow>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT seq, jti, claims FROM ssf_pending WHERE stream_id = $1 ORDER BY seq LIMIT $2"
    )
    .bind(stream_id)
    .bind(limit)
    .fetch_all(e)
    .await)?)
}

/// The stream `id` with the oldest `limit` SETs waiting on it after `seq` (those before
/// were sent and wait for their removal): one read per push pass.
pub async fn with_pending(
    db: impl Into<Exec<'_>>,
    id: &str,
    seq: i64,
    limit: i64,
) -> Result<Option<(StreamRow, Vec<PendingRow>)>, StoreError> {
    #[derive(FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        stream: StreamRow,
        seq: Option<i64>,
        jti: Option<String>,
        claims: Option<String>,
    }
    let joined: Vec<Joined> = on!(db.into(), |e| sqlx::query_as(&format!(
        "SELECT {COLUMNS}, p.seq, p.jti, p.claims FROM ssf_streams s
         LEFT JOIN ssf_pending p ON p.stream_id = s.id AND p.seq > $2
         WHERE s.id = $1 ORDER BY p.seq LIMIT $3"
    ))
    .bind(id)
    .bind(seq)
    .bind(limit)
    .fetch_all(e)
    .await)?;
    let Some(stream) = joined.first().map(|j| j.stream.clone()) else {
        return Ok(None);
    };
    let pending = joined
        .into_iter()
        .filter_map(|j| {
            Some(PendingRow {
                seq: j.seq?,
                jti: j.jti?,
                claims: j.claims?,
            })
        })
        .collect();
    Ok(Some((stream, pending)))
}

/// How many SETs wait on a stream.
pub async fn count_pending(db: impl Into<Exec<'_>>, stream_id: &str) -> Result<i64, StoreError> {
    count_of_stream(
        db,
        "SELECT COUNT(*) FROM ssf_pending WHERE stream_id = $1",
        stream_id,
    )
    .await
}

/// How many SETs wait on each stream that has any.
pub async fn count_pending_all(
    db: impl Into<Exec<'_>>,
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = on!(db.into(), |e| sqlx::query_as(
        "SELECT stream_id, COUNT(*) FROM ssf_pending GROUP BY stream_id"
    )
    .fetch_all(e)
    .await)?;
    Ok(rows.into_iter().collect())
}

/// Removes a delivered (or rejected) SET; false when it was not waiting.
pub async fn delete_pending(
    db: impl Into<Exec<'_>>,
    stream_id: &str,
    jti: &str,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "DELETE FROM ssf_pending WHERE stream_id = $1 AND jti = $2",
        stream_id,
        jti
    )? == 1)
}

/// Drops every SET waiting on a stream (it was disabled).
pub async fn clear_pending(db: impl Into<Exec<'_>>, stream_id: &str) -> Result<(), StoreError> {
    exec!(
        db,
        "DELETE FROM ssf_pending WHERE stream_id = $1",
        stream_id
    )?;
    Ok(())
}
