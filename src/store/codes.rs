//! Authorization codes (RFC 6749 §4.1.2): single use, stored as SHA-256.

use sqlx::FromRow;

use super::{Exec, StoreError, on};

#[derive(Debug, Clone, FromRow)]
pub struct CodeRow {
    pub hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub authz_version: i64,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub family_id: Option<String>,
}

pub async fn insert(db: impl Into<Exec<'_>>, c: &CodeRow) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO authorization_codes (hash, client_id, user_id, authz_version, redirect_uri,
           code_challenge, scope, nonce, auth_time, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&c.hash)
    .bind(&c.client_id)
    .bind(&c.user_id)
    .bind(c.authz_version)
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(&c.scope)
    .bind(&c.nonce)
    .bind(c.auth_time)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn by_hash(db: impl Into<Exec<'_>>, hash: &[u8]) -> Result<Option<CodeRow>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT hash, client_id, user_id, authz_version, redirect_uri, code_challenge, scope,
                nonce, auth_time, created_at, expires_at, consumed_at, family_id
         FROM authorization_codes WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(e)
    .await)?)
}

/// Consumes an unconsumed code; false when another request consumed it first.
pub async fn consume(db: impl Into<Exec<'_>>, hash: &[u8], now: i64) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| {
        sqlx::query(
        "UPDATE authorization_codes SET consumed_at = $2 WHERE hash = $1 AND consumed_at IS NULL",
    )
    .bind(hash)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Records a second presentation; returns the family to revoke, if already recorded.
pub async fn mark_replayed(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    now: i64,
) -> Result<Option<String>, StoreError> {
    let row: Option<(Option<String>,)> = on!(db.into(), |e| sqlx::query_as(
        "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $2)
         WHERE hash = $1 RETURNING family_id",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(e)
    .await)?;
    Ok(row.and_then(|(f,)| f))
}

/// Records the family an exchange started; true when the code was replayed meanwhile.
pub async fn set_family(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    family_id: &str,
) -> Result<bool, StoreError> {
    let row: Option<(Option<i64>,)> = on!(db.into(), |e| sqlx::query_as(
        "UPDATE authorization_codes SET family_id = $2 WHERE hash = $1 RETURNING replayed_at",
    )
    .bind(hash)
    .bind(family_id)
    .fetch_optional(e)
    .await)?;
    Ok(row.is_some_and(|(r,)| r.is_some()))
}

/// Deletes codes that expired before `before`.
pub async fn forget_expired(db: impl Into<Exec<'_>>, before: i64) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "DELETE FROM authorization_codes WHERE expires_at < $1"
    )
    .bind(before)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}
