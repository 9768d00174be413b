use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

use super::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub public_jwk: String,
    pub private_sealed: Vec<u8>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "kid, alg, state, public_jwk, private_sealed, created_at, activated_at, retired_at, revoked_at";

/// Every key row, revoked ones included, oldest first.
pub async fn list(db: impl SqliteExecutor<'_>) -> Result<Vec<KeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, kid"
    ))
    .fetch_all(db)
    .await?)
}

pub async fn count(db: impl SqliteExecutor<'_>) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(db)
        .await?;
    Ok(n)
}

pub async fn insert(conn: &mut SqliteConnection, k: &KeyRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO signing_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.state)
    .bind(&k.public_jwk)
    .bind(&k.private_sealed)
    .bind(k.created_at)
    .bind(k.activated_at)
    .bind(k.retired_at)
    .bind(k.revoked_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a key from one state to another; false when it was not in `from`.
pub async fn transition(
    conn: &mut SqliteConnection,
    kid: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let column = match to {
        "active" => "activated_at",
        "retired" => "retired_at",
        "revoked" => "revoked_at",
        _ => return Err(StoreError::Corrupt(format!("no transition to `{to}`"))),
    };
    let done = sqlx::query(&format!(
        "UPDATE signing_keys SET state = ?, {column} = ? WHERE kid = ? AND state = ?"
    ))
    .bind(to)
    .bind(now)
    .bind(kid)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes retired keys whose last token has expired.
pub async fn delete_retired_before(
    conn: &mut SqliteConnection,
    before: i64,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM signing_keys WHERE state = 'retired' AND retired_at < ?")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub async fn meta(db: impl SqliteExecutor<'_>, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(v,)| v))
}

pub async fn set_meta(
    conn: &mut SqliteConnection,
    key: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_private(
    conn: &mut SqliteConnection,
    kid: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE signing_keys SET private_sealed = ? WHERE kid = ?")
        .bind(sealed)
        .bind(kid)
        .execute(conn)
        .await?;
    Ok(())
}
