//! Shared Signals streams as stored: their configuration, status and place in the
//! event log, their subject exceptions, the SETs waiting for delivery, and the lease
//! that lets one instance at a time push a stream.

use sqlx::FromRow;

use super::{Exec, StoreError, on};

/// One stream.
#[derive(Debug, Clone, FromRow)]
pub struct StreamRow {
    /// The `stream_id`.
    pub id: String,
    /// The client (receiver) that owns it.
    pub client_id: String,
    /// JSON of the receiver-supplied configuration (the domain's `Config`).
    pub config: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why the status was last set, as the receiver said.
    pub reason: Option<String>,
    /// The last event id read from the log.
    pub cursor: i64,
    /// When it was created.
    pub created_at: i64,
    /// When a verification was last requested.
    pub verified_at: Option<i64>,
    /// JSON `{err, description, at}` of the last failed delivery.
    pub last_error: Option<String>,
    /// SETs the receiver has accepted (push 202, poll acknowledged).
    pub delivered: i64,
    /// Failed delivery attempts and SETs the receiver rejected.
    pub failed: i64,
    /// The instance pushing it, if any.
    pub lease_owner: Option<String>,
    /// Until when that instance's lease holds.
    pub lease_until: Option<i64>,
}

const COLUMNS: &str = "id, client_id, config, status, reason, cursor, created_at, verified_at, last_error, delivered, failed, lease_owner, lease_until";

/// Creates a stream.
pub async fn insert(db: impl Into<Exec<'_>>, row: &StreamRow) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO ssf_streams (id, client_id, config, status, reason, cursor, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(&row.id)
    .bind(&row.client_id)
    .bind(&row.config)
    .bind(&row.status)
    .bind(&row.reason)
    .bind(row.cursor)
    .bind(row.created_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The stream `id`, whoever owns it.
pub async fn by_id(db: impl Into<Exec<'_>>, id: &str) -> Result<Option<StreamRow>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM ssf_streams WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await)?)
}

/// A client's streams, oldest first.
pub async fn of_client(
    db: impl Into<Exec<'_>>,
    client_id: &str,
) -> Result<Vec<StreamRow>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM ssf_streams WHERE client_id = $1 ORDER BY created_at, id"
    ))
    .bind(client_id)
    .fetch_all(e)
    .await)?)
}

/// The streams a delivery worker may have to serve: those not disabled, and those
/// disabled by tessera that still hold their `stream-updated` SET.
pub async fn live(db: impl Into<Exec<'_>>) -> Result<Vec<StreamRow>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM ssf_streams s WHERE status <> 'disabled'
           OR EXISTS (SELECT 1 FROM ssf_pending p WHERE p.stream_id = s.id) ORDER BY id"
    ))
    .fetch_all(e)
    .await)?)
}

/// Every stream's id and configuration, disabled ones too (KEK rotation re-seals them).
pub async fn configs(db: impl Into<Exec<'_>>) -> Result<Vec<(String, String)>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT id, config FROM ssf_streams ORDER BY id"
    )
    .fetch_all(e)
    .await)?)
}

/// Runs one statement, returning the rows it changed.
macro_rules! exec {
    ($db:expr, $sql:expr $(, $arg:expr)*) => {
        on!($db.into(), |e| sqlx::query($sql)
            $(.bind($arg))*
            .execute(e)
            .await
            .map(|r| r.rows_affected()))
    };
}

/// Replaces a stream's configuration; false when it is gone.
pub async fn set_config(
    db: impl Into<Exec<'_>>,
    id: &str,
    config: &str,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "UPDATE ssf_streams SET config = $2 WHERE id = $1",
        id,
        config
    )? == 1)
}

/// Sets a stream's status and reason, and moves its cursor when `cursor` is given
/// (a disabled stream holds nothing: re-enabled, it starts from the log's end).
pub async fn set_status(
    db: impl Into<Exec<'_>>,
    id: &str,
    status: &str,
    reason: Option<&str>,
    cursor: Option<i64>,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "UPDATE ssf_streams SET status = $2, reason = $3, cursor = COALESCE($4, cursor) WHERE id = $1",
        id,
        status,
        reason,
        cursor
    )? == 1)
}

/// Deletes a stream with its subjects and pending SETs.
pub async fn delete(db: impl Into<Exec<'_>>, id: &str) -> Result<bool, StoreError> {
    Ok(exec!(db, "DELETE FROM ssf_streams WHERE id = $1", id)? == 1)
}

/// Records that a verification was requested at `now`.
pub async fn set_verified_at(
    db: impl Into<Exec<'_>>,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    exec!(
        db,
        "UPDATE ssf_streams SET verified_at = $2 WHERE id = $1",
        id,
        now
    )?;
    Ok(())
}

/// Records a failed delivery (`error`: JSON `{err, description, at}`), counting `failures`.
pub async fn record_error(
    db: impl Into<Exec<'_>>,
    id: &str,
    error: &str,
    failures: i64,
) -> Result<(), StoreError> {
    exec!(
        db,
        "UPDATE ssf_streams SET last_error = $2, failed = failed + $3 WHERE id = $1",
        id,
        error,
        failures
    )?;
    Ok(())
}

/// Moves the cursor from `from` to `to`; false when another writer moved it first.
pub async fn advance(
    db: impl Into<Exec<'_>>,
    id: &str,
    from: i64,
    to: i64,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "UPDATE ssf_streams SET cursor = $3 WHERE id = $1 AND cursor = $2",
        id,
        from,
        to
    )? == 1)
}

/// Takes or renews the lease on pushing stream `id` for `owner` until `until`: free,
/// already `owner`'s, or expired at `now`. One conditional statement, so two
/// instances never both hold it.
pub async fn take_lease(
    db: impl Into<Exec<'_>>,
    id: &str,
    owner: &str,
    now: i64,
    until: i64,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "UPDATE ssf_streams SET lease_owner = $2, lease_until = $4
         WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3)",
        id,
        owner,
        now,
        until
    )? == 1)
}

/// Gives up every lease `owner` holds (a clean shutdown), so another instance or the
/// next start takes over at once.
pub async fn release_leases(db: impl Into<Exec<'_>>, owner: &str) -> Result<(), StoreError> {
    exec!(
        db,
        "UPDATE ssf_streams SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        owner
    )?;
    Ok(())
}

/// Adds a subject exception; false when it was there already.
pub async fn insert_subject(
    db: impl Into<Exec<'_>>,
    stream_id: &str,
    sub: &str,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "INSERT INTO ssf_subjects (stream_id, sub) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        stream_id,
        sub
    )? == 1)
}

/// Removes a subject exception; false when there was none.
pub async fn delete_subject(
    db: impl Into<Exec<'_>>,
    stream_id: &str,
    sub: &str,
) -> Result<bool, StoreError> {
    Ok(exec!(
        db,
        "DELETE FROM ssf_subjects WHERE stream_id = $1 AND sub = $2",
        stream_id,
        sub
    )? == 1)
}

/// How many subject exceptions a stream has.
pub async fn count_subjects(db: impl Into<Exec<'_>>, stream_id: &str) -> Result<i64, StoreError> {
    count_of_stream(
        db,
        "SELECT COUNT(*) FROM ssf_subjects WHERE stream_id = $1",
        stream_id,
    )
    .await
}

/// `sql`, a count of one stream's rows, for `stream_id`.
async fn count_of_stream(
    db: impl Into<Exec<'_>>,
    sql: &'static str,
    stream_id: &str,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = on!(db.into(), |e| sqlx::query_as(sql)
        .bind(stream_id)
        .fetch_one(e)
        .await)?;
    Ok(n)
}

/// The (stream, subject) exceptions naming one of `subs`, of every stream.
pub async fn subject_exceptions(
    db: impl Into<Exec<'_>>,
    subs: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut db = db.into();
    let mut found = Vec::new();
    for sub in subs {
        let rows: Vec<(String, String)> = on!(db.re(), |e| sqlx::query_as(
            "SELECT stream_id, sub FROM ssf_subjects WHERE sub = $1"
        )
        .bind(sub)
        .fetch_all(e)
        .await)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Disables every stream of a client that is not disabled already, with `reason`, and
/// drops what they held; returns those it disabled (id, config). Two statements of the
/// caller's transaction.
pub async fn disable_client_streams(
    tx: &mut super::Tx,
    client_id: &str,
    reason: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    exec!(
        &mut *tx,
        "DELETE FROM ssf_pending WHERE stream_id IN
           (SELECT id FROM ssf_streams WHERE client_id = $1 AND status <> 'disabled')",
        client_id
    )?;
    Ok(on!(Exec::from(&mut *tx), |e| sqlx::query_as(
        "UPDATE ssf_streams SET status = 'disabled', reason = $2
         WHERE client_id = $1 AND status <> 'disabled' RETURNING id, config"
    )
    .bind(client_id)
    .bind(reason)
    .fetch_all(e)
    .await)?)
}

/// Counts SETs the receiver accepted.
pub async fn count_delivered(
    db: impl Into<Exec<'_>>,
    stream_id: &str,
    n: i64,
) -> Result<(), StoreError> {
    exec!(
        db,
        "UPDATE ssf_streams SET delivered = delivered + $2 WHERE id = $1",
        stream_id,
        n
    )?;
    Ok(())
}

/// Every stream's id, client, counts, cursor and SETs waiting (for the metrics).
pub async fn figures(
    db: impl Into<Exec<'_>>,
) -> Result<Vec<(String, String, i64, i64, i64, i64)>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT s.id, s.client_id, s.delivered, s.failed, s.cursor,
                (SELECT COUNT(*) FROM ssf_pending p WHERE p.stream_id = s.id)
         FROM ssf_streams s ORDER BY s.id"
    )
    .fetch_all(e)
    .await)?)
}

mod pending;
pub use pending::*;
