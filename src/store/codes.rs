//! Authorization codes (RFC 6749 §4.1.2): single use, stored as SHA-256.

use sqlx::FromRow;

use super::{Exec, StoreError, on};

/// An issued authorization code and what its exchange will grant.
#[derive(Debug, Clone, FromRow)]
pub struct CodeRow {
    /// SHA-256 of the code; the code itself is never stored.
    pub hash: Vec<u8>,
    /// The client it was issued to; only that client may redeem it.
    pub client_id: String,
    /// The user who signed in and approved.
    pub user_id: String,
    /// The user's `authz_version` at issue: a change since then makes the exchange fail.
    pub authz_version: i64,
    /// The `redirect_uri` of the request, which the exchange must repeat (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// The PKCE S256 challenge the exchange's `code_verifier` must match.
    pub code_challenge: String,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The OIDC `nonce` to copy into the ID token; `None` when the request had none.
    pub nonce: Option<String>,
    /// When the user signed in (Unix seconds), the ID token's `auth_time`.
    pub auth_time: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the exchange fails from then on.
    pub expires_at: i64,
    /// When the code was redeemed; `None` until then. Set only by [`consume`].
    pub consumed_at: Option<i64>,
    /// The refresh family its exchange started, so that a replay can revoke it; `None`
    /// until [`set_family`].
    pub family_id: Option<String>,
    /// How the user signed in (RFC 8176 values, space-separated).
    pub amr: String,
}

/// Stores a freshly issued code (unconsumed, no family yet).
pub async fn insert(db: impl Into<Exec<'_>>, c: &CodeRow) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO authorization_codes (hash, client_id, user_id, authz_version, redirect_uri,
           code_challenge, scope, nonce, auth_time, created_at, expires_at, amr)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
    .bind(&c.amr)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The code with this SHA-256, consumed or not.
pub async fn by_hash(db: impl Into<Exec<'_>>, hash: &[u8]) -> Result<Option<CodeRow>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT hash, client_id, user_id, authz_version, redirect_uri, code_challenge, scope,
                nonce, auth_time, created_at, expires_at, consumed_at, family_id, amr
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
