use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

use super::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct FamilyRow {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A refresh token joined with its family.
#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub hash: Vec<u8>,
    pub issued_at: i64,
    pub scope: String,
    pub consumed_at: Option<i64>,
    pub successor_hash: Option<Vec<u8>>,
    pub successor_sealed: Option<Vec<u8>>,
    #[sqlx(flatten)]
    pub family: FamilyRow,
    #[sqlx(flatten)]
    pub user: UserState,
}

/// The family's user as it is now: what a refresh re-reads.
#[derive(Debug, Clone, FromRow)]
pub struct UserState {
    #[sqlx(rename = "user_roles")]
    pub roles: String,
    #[sqlx(rename = "user_ver")]
    pub authz_version: i64,
    #[sqlx(rename = "user_disabled")]
    pub disabled: bool,
}

impl UserState {
    pub fn roles(&self) -> Result<Vec<String>, StoreError> {
        super::from_json(&self.roles)
    }
}

const FAMILY_COLUMNS: &str = "f.id, f.user_id, f.client_id, f.scope, f.audience, f.created_at, f.last_used_at, f.expires_at, f.revoked_at";

pub async fn insert_family(conn: &mut SqliteConnection, f: &FamilyRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_families (id, user_id, client_id, scope, audience, created_at, last_used_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&f.id)
    .bind(&f.user_id)
    .bind(&f.client_id)
    .bind(&f.scope)
    .bind(&f.audience)
    .bind(f.created_at)
    .bind(f.last_used_at)
    .bind(f.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_token(
    conn: &mut SqliteConnection,
    hash: &[u8],
    family_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, family_id, scope, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(hash)
    .bind(family_id)
    .bind(scope)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn token(
    db: impl SqliteExecutor<'_>,
    hash: &[u8],
) -> Result<Option<TokenRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT t.hash, t.created_at AS issued_at, t.scope, t.consumed_at, t.successor_hash, t.successor_sealed, {FAMILY_COLUMNS},
                u.roles AS user_roles, u.authz_version AS user_ver, u.disabled AS user_disabled
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id
         WHERE t.hash = ?"
    ))
    .bind(hash)
    .fetch_optional(db)
    .await?)
}

/// Consumes a token if nobody has and its family is live: the one conditional
/// update that decides a race. The `refresh_token_rotated` trigger inserts the
/// successor and touches the family within the same statement.
pub async fn consume(
    db: impl SqliteExecutor<'_>,
    hash: &[u8],
    successor_hash: &[u8],
    successor_sealed: Option<&[u8]>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET consumed_at = ?, successor_hash = ?, successor_sealed = ?
         WHERE hash = ? AND consumed_at IS NULL
           AND (SELECT revoked_at FROM refresh_families f WHERE f.id = family_id) IS NULL",
    )
    .bind(now)
    .bind(successor_hash)
    .bind(successor_sealed)
    .bind(hash)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One token to consume in a batch: its hash, its successor's hash and sealed copy, the time.
pub type Consume = ([u8; 32], [u8; 32], Option<Vec<u8>>, i64);

/// [`consume`] for many tokens in one statement (group commit): returns the hashes
/// that were consumed. Hashes must be distinct (a duplicate could win twice).
pub async fn consume_many(
    db: impl SqliteExecutor<'_>,
    batch: &[Consume],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let values = vec!["(?, ?, ?, ?)"; batch.len()].join(", ");
    // `hash IN (...)` keeps every lookup on the primary key.
    let sql = format!(
        "WITH v(h, n, s, at) AS (VALUES {values})
         UPDATE refresh_tokens SET
             consumed_at = (SELECT at FROM v WHERE v.h = refresh_tokens.hash),
             successor_hash = (SELECT n FROM v WHERE v.h = refresh_tokens.hash),
             successor_sealed = (SELECT s FROM v WHERE v.h = refresh_tokens.hash)
         WHERE hash IN (SELECT h FROM v) AND consumed_at IS NULL
           AND (SELECT revoked_at FROM refresh_families f WHERE f.id = family_id) IS NULL
         RETURNING hash"
    );
    let mut q = sqlx::query_as::<_, (Vec<u8>,)>(&sql);
    for (hash, next, sealed, now) in batch {
        q = q
            .bind(hash.as_slice())
            .bind(next.as_slice())
            .bind(sealed.as_deref())
            .bind(*now);
    }
    Ok(q.fetch_all(db).await?.into_iter().map(|(h,)| h).collect())
}

/// Whether `hash` is the family's live head (issued, not consumed).
pub async fn is_unconsumed(conn: &mut SqliteConnection, hash: &[u8]) -> Result<bool, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM refresh_tokens WHERE hash = ? AND consumed_at IS NULL")
            .bind(hash)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

pub async fn touch_family(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE refresh_families SET last_used_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes one family; false when it was already revoked.
pub async fn revoke_family(
    conn: &mut SqliteConnection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE refresh_families SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        // The sealed successors are useless now; do not keep them around.
        sqlx::query("UPDATE refresh_tokens SET successor_sealed = NULL WHERE family_id = ?")
            .bind(id)
            .execute(conn)
            .await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Revokes every live family of a user; returns their ids.
pub async fn revoke_user_families(
    conn: &mut SqliteConnection,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<(String,)> = sqlx::query_as(
        "UPDATE refresh_families SET revoked_at = ?, revoke_reason = ?
         WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE refresh_tokens SET successor_sealed = NULL
         WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = ?) AND successor_sealed IS NOT NULL",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

pub async fn family(
    db: impl SqliteExecutor<'_>,
    id: &str,
) -> Result<Option<FamilyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = ?"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

pub async fn live_families_of(
    db: impl SqliteExecutor<'_>,
    user_id: &str,
    now: i64,
) -> Result<Vec<FamilyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {FAMILY_COLUMNS} FROM refresh_families f
         WHERE f.user_id = ? AND f.revoked_at IS NULL AND f.expires_at > ? ORDER BY f.created_at"
    ))
    .bind(user_id)
    .bind(now)
    .fetch_all(db)
    .await?)
}

/// Drops sealed successors whose grace window has passed.
pub async fn forget_sealed_successors(
    db: impl SqliteExecutor<'_>,
    consumed_before: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL AND consumed_at < ?",
    )
    .bind(consumed_before)
    .execute(db)
    .await?
    .rows_affected())
}

/// Deletes families that ended before `before` (revoked, or past their absolute
/// lifetime), with their tokens; returns how many families.
pub async fn forget_ended(db: &sqlx::SqlitePool, before: i64) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let ended = "SELECT id FROM refresh_families WHERE revoked_at < ? OR expires_at < ?";
    sqlx::query(&format!(
        "DELETE FROM refresh_tokens WHERE family_id IN ({ended})"
    ))
    .bind(before)
    .bind(before)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(&format!(
        "DELETE FROM refresh_families WHERE id IN ({ended})"
    ))
    .bind(before)
    .bind(before)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}
