//! Second factors (TOTP) and recovery codes. A TOTP seed is stored sealed (the domain
//! seals it under the KEK); a recovery code only as its SHA-256.

use sqlx::FromRow;

use super::{Exec, StoreError, on};

/// A second factor as stored.
#[derive(Debug, Clone, FromRow)]
pub struct FactorRow {
    /// A UUID; the AAD its secret is sealed with.
    pub id: String,
    /// The user it belongs to.
    pub user_id: String,
    /// `totp`.
    pub kind: String,
    /// The name the user gave it.
    pub name: String,
    /// The sealed secret.
    pub secret: Vec<u8>,
    /// The last TOTP time step a code was accepted at (0: none yet).
    pub last_step: i64,
    /// Unix seconds, as are the other times.
    pub created_at: i64,
    /// `None` while an enrollment awaits its first code.
    pub confirmed_at: Option<i64>,
    /// The last sign-in it confirmed.
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, kind, name, secret, last_step, created_at, confirmed_at, last_used_at";

/// Stores an unconfirmed factor.
pub async fn insert(db: impl Into<Exec<'_>>, f: &FactorRow) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO factors (id, user_id, kind, name, secret, last_step, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&f.id)
    .bind(&f.user_id)
    .bind(&f.kind)
    .bind(&f.name)
    .bind(&f.secret)
    .bind(f.last_step)
    .bind(f.created_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A user's factors, confirmed or not, oldest first.
pub async fn of_user(db: impl Into<Exec<'_>>, user_id: &str) -> Result<Vec<FactorRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM factors WHERE user_id = $1 ORDER BY created_at, id");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(user_id)
        .fetch_all(e)
        .await)?)
}

/// One factor of a user.
pub async fn get(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    id: &str,
) -> Result<Option<FactorRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM factors WHERE user_id = $1 AND id = $2");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(id)
        .fetch_optional(e)
        .await)?)
}

/// Confirms an enrollment at its first code's step; false when it was confirmed already
/// or is gone.
pub async fn confirm(
    db: impl Into<Exec<'_>>,
    id: &str,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "UPDATE factors SET confirmed_at = $3, last_used_at = $3, last_step = $2
         WHERE id = $1 AND confirmed_at IS NULL",
    )
    .bind(id)
    .bind(step)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Accepts a code at `step`: only if no code at that step or a later one was accepted
/// before (one conditional update, so two requests with one code have one winner).
pub async fn use_step(
    db: impl Into<Exec<'_>>,
    id: &str,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "UPDATE factors SET last_step = $2, last_used_at = $3
         WHERE id = $1 AND last_step < $2 AND confirmed_at IS NOT NULL",
    )
    .bind(id)
    .bind(step)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes one factor of a user; false when there was none.
pub async fn delete(db: impl Into<Exec<'_>>, user_id: &str, id: &str) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "DELETE FROM factors WHERE user_id = $1 AND id = $2"
    )
    .bind(user_id)
    .bind(id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes every factor and recovery code of a user; returns how many factors there were.
pub async fn delete_all(db: &mut super::Tx, user_id: &str) -> Result<u64, StoreError> {
    let n = on!(Exec::from(&mut *db), |e| sqlx::query(
        "DELETE FROM factors WHERE user_id = $1"
    )
    .bind(user_id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    delete_recovery_codes(&mut *db, user_id).await?;
    Ok(n)
}

/// Every sealed secret (id, secret), for KEK rotation.
pub async fn secrets(db: impl Into<Exec<'_>>) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "SELECT id, secret FROM factors ORDER BY id"
    )
    .fetch_all(e)
    .await)?)
}

/// Replaces a factor's sealed secret (KEK rotation).
pub async fn set_secret(
    db: impl Into<Exec<'_>>,
    id: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "UPDATE factors SET secret = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(sealed)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a user's recovery codes with these hashes.
pub async fn replace_recovery_codes(
    db: &mut super::Tx,
    user_id: &str,
    hashes: &[[u8; 32]],
    now: i64,
) -> Result<(), StoreError> {
    delete_recovery_codes(&mut *db, user_id).await?;
    for hash in hashes {
        on!(Exec::from(&mut *db), |e| sqlx::query(
            "INSERT INTO recovery_codes (hash, user_id, created_at) VALUES ($1, $2, $3)"
        )
        .bind(&hash[..])
        .bind(user_id)
        .bind(now)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

async fn delete_recovery_codes(db: impl Into<Exec<'_>>, user_id: &str) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "DELETE FROM recovery_codes WHERE user_id = $1"
    )
    .bind(user_id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Spends an unused recovery code of the user (one conditional update: one winner).
pub async fn use_recovery_code(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    hash: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "UPDATE recovery_codes SET used_at = $3
         WHERE hash = $1 AND user_id = $2 AND used_at IS NULL",
    )
    .bind(hash)
    .bind(user_id)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// How many unused recovery codes the user has left.
pub async fn recovery_codes_left(
    db: impl Into<Exec<'_>>,
    user_id: &str,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = on!(db.into(), |e| sqlx::query_as(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL"
    )
    .bind(user_id)
    .fetch_one(e)
    .await)?;
    Ok(n)
}

/// Names a factor.
pub async fn rename(db: impl Into<Exec<'_>>, id: &str, name: &str) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "UPDATE factors SET name = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(name)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
