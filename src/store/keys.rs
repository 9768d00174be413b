use sqlx::FromRow;

use super::{Exec, StoreError, conflict, on};

/// A signing key as stored: its public half in clear, its private half sealed.
#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    /// The `kid` published in the JWKS and in token headers.
    pub kid: String,
    /// The JWS `alg` the key signs with.
    pub alg: String,
    /// The domain's `KeyState` name (`next`, `active`, `retired`, `revoked`).
    pub state: String,
    /// The public key as JWK JSON, what the JWKS publishes for it.
    pub public_jwk: String,
    /// The private key sealed under the KEK; unreadable without it.
    pub private_sealed: Vec<u8>,
    /// Unix seconds, as are the stamps below.
    pub created_at: i64,
    /// When it started signing; `None` while `next`.
    pub activated_at: Option<i64>,
    /// When it stopped signing; `None` until retired.
    pub retired_at: Option<i64>,
    /// When it was withdrawn; `None` unless revoked.
    pub revoked_at: Option<i64>,
    /// The chain it belongs to (the domain's `KeyPurpose` name).
    pub purpose: String,
}

const COLUMNS: &str = "kid, alg, state, public_jwk, private_sealed, created_at, activated_at, retired_at, revoked_at, purpose";

/// Every key row, revoked ones included, oldest first.
pub async fn list(db: impl Into<Exec<'_>>) -> Result<Vec<KeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, kid");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql).fetch_all(e).await)?)
}

/// How many key rows there are, revoked ones included (0 on a fresh database).
pub async fn count(db: impl Into<Exec<'_>>) -> Result<i64, StoreError> {
    let (n,): (i64,) = on!(db.into(), |e| sqlx::query_as(
        "SELECT COUNT(*) FROM signing_keys"
    )
    .fetch_one(e)
    .await)?;
    Ok(n)
}

/// Stores a new key row.
pub async fn insert(db: impl Into<Exec<'_>>, k: &KeyRow) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    on!(db.into(), |e| sqlx::query(&sql)
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.state)
        .bind(&k.public_jwk)
        .bind(&k.private_sealed)
        .bind(k.created_at)
        .bind(k.activated_at)
        .bind(k.retired_at)
        .bind(k.revoked_at)
        .bind(&k.purpose)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))
    .map_err(conflict)?;
    Ok(())
}

/// The timestamp column a state change sets. The state names themselves are the
/// domain's (its `KeyState`): the store keeps them as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// `activated_at`: the key starts signing.
    Activated,
    /// `retired_at`: the key stops signing, still published.
    Retired,
    /// `revoked_at`: the key is withdrawn.
    Revoked,
}

impl Stamp {
    fn column(self) -> &'static str {
        match self {
            Self::Activated => "activated_at",
            Self::Retired => "retired_at",
            Self::Revoked => "revoked_at",
        }
    }
}

/// Moves a key from state `from` to state `to` (stored names), setting `stamp` to
/// `now`; false when it was not in `from`.
pub async fn transition(
    db: impl Into<Exec<'_>>,
    kid: &str,
    from: &str,
    to: &str,
    stamp: Stamp,
    now: i64,
) -> Result<bool, StoreError> {
    let column = stamp.column();
    let sql =
        format!("UPDATE signing_keys SET state = $1, {column} = $2 WHERE kid = $3 AND state = $4");
    let done = on!(db.into(), |e| sqlx::query(&sql)
        .bind(to)
        .bind(now)
        .bind(kid)
        .bind(from)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Removes the keys in state `retired` (its stored name) retired before `before`.
pub async fn delete_retired_before(
    db: impl Into<Exec<'_>>,
    retired: &str,
    before: i64,
) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "DELETE FROM signing_keys WHERE state = $1 AND retired_at < $2"
    )
    .bind(retired)
    .bind(before)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}

/// A value of the `meta` key-value table (the KEK check, the policy record, the
/// events' pruning mark); `None` when never set.
pub async fn meta(db: impl Into<Exec<'_>>, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let row: Option<(Vec<u8>,)> = on!(db.into(), |e| sqlx::query_as(
        "SELECT value FROM meta WHERE key = $1"
    )
    .bind(key)
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(v,)| v))
}

/// Writes a `meta` value, replacing any previous one.
pub async fn set_meta(db: impl Into<Exec<'_>>, key: &str, value: &[u8]) -> Result<(), StoreError> {
    on!(db.into(), |e| {
        sqlx::query(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    .bind(key)
    .bind(value)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Replaces a key's sealed private half (re-sealing under a new KEK).
pub async fn set_private(
    db: impl Into<Exec<'_>>,
    kid: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "UPDATE signing_keys SET private_sealed = $1 WHERE kid = $2"
    )
    .bind(sealed)
    .bind(kid)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
