//! Passkeys (WebAuthn credentials) and the ceremonies begun for them. A ceremony is a
//! row until it is finished or expires; finishing it deletes it, so a challenge is
//! spent once.

use sqlx::FromRow;

use super::{Exec, StoreError, on};

/// A passkey as stored.
#[derive(Debug, Clone, FromRow)]
pub struct PasskeyRow {
    /// A UUID, named by the account page's removal form.
    pub id: String,
    /// The user it signs in.
    pub user_id: String,
    /// The credential id the authenticator chose.
    pub credential_id: Vec<u8>,
    /// The WebAuthn user handle it was registered with.
    pub user_handle: Vec<u8>,
    /// The name the user gave it.
    pub name: String,
    /// Its public key and fixed extensions, as webauthn_rp encodes them.
    pub static_state: Vec<u8>,
    /// What changes at each use (sign counter, flags), as webauthn_rp encodes it.
    pub dynamic_state: Vec<u8>,
    /// The last sign counter accepted.
    pub sign_count: i64,
    /// Unix seconds, as is the last use.
    pub created_at: i64,
    /// The last sign-in it made or confirmed.
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, credential_id, user_handle, name, static_state, \
     dynamic_state, sign_count, created_at, last_used_at";

/// Stores a registered passkey; false when its credential id is registered already.
pub async fn insert(db: impl Into<Exec<'_>>, p: &PasskeyRow) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "INSERT INTO passkeys (id, user_id, credential_id, user_handle, name, static_state,
                               dynamic_state, sign_count, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (credential_id) DO NOTHING",
    )
    .bind(&p.id)
    .bind(&p.user_id)
    .bind(&p.credential_id)
    .bind(&p.user_handle)
    .bind(&p.name)
    .bind(&p.static_state)
    .bind(&p.dynamic_state)
    .bind(p.sign_count)
    .bind(p.created_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A user's passkeys, oldest first.
pub async fn of_user(
    db: impl Into<Exec<'_>>,
    user_id: &str,
) -> Result<Vec<PasskeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(user_id)
        .fetch_all(e)
        .await)?)
}

/// The passkey with this credential id.
pub async fn by_credential(
    db: impl Into<Exec<'_>>,
    credential_id: &[u8],
) -> Result<Option<PasskeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(credential_id)
        .fetch_optional(e)
        .await)?)
}

/// Records a use: the new dynamic state, only if the counter is still the one the
/// assertion was checked against (a compare-and-swap: of two uses checked against one
/// counter, one wins).
pub async fn record_use(
    db: impl Into<Exec<'_>>,
    id: &str,
    checked_count: i64,
    dynamic_state: &[u8],
    sign_count: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "UPDATE passkeys SET dynamic_state = $3, sign_count = $4, last_used_at = $5
         WHERE id = $1 AND sign_count = $2",
    )
    .bind(id)
    .bind(checked_count)
    .bind(dynamic_state)
    .bind(sign_count)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes one passkey of a user; false when there was none.
pub async fn delete(db: impl Into<Exec<'_>>, user_id: &str, id: &str) -> Result<bool, StoreError> {
    let n = on!(db.into(), |e| sqlx::query(
        "DELETE FROM passkeys WHERE user_id = $1 AND id = $2"
    )
    .bind(user_id)
    .bind(id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes every passkey of a user (an operator's reset); how many there were.
pub async fn delete_all(db: impl Into<Exec<'_>>, user_id: &str) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "DELETE FROM passkeys WHERE user_id = $1"
    )
    .bind(user_id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}

/// A ceremony begun: its challenge, kind (`register`, `authenticate`), the user it is
/// for (registration), its encoded state and expiry. Expired ceremonies are swept first.
pub async fn begin_ceremony(
    db: &mut super::Tx,
    challenge: &[u8],
    kind: &str,
    user_id: Option<&str>,
    state: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    on!(Exec::from(&mut *db), |e| sqlx::query(
        "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1"
    )
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    on!(Exec::from(&mut *db), |e| sqlx::query(
        "INSERT INTO webauthn_ceremonies (challenge, kind, user_id, state, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(challenge)
    .bind(kind)
    .bind(user_id)
    .bind(state)
    .bind(expires_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Finishes a ceremony: deletes its row if it is of `kind` and not expired, and returns
/// its user and state. One statement, so a challenge is spent at most once.
pub async fn take_ceremony(
    db: impl Into<Exec<'_>>,
    challenge: &[u8],
    kind: &str,
    now: i64,
) -> Result<Option<(Option<String>, Vec<u8>)>, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query_as(
        "DELETE FROM webauthn_ceremonies WHERE challenge = $1 AND kind = $2 AND expires_at > $3
         RETURNING user_id, state",
    )
    .bind(challenge)
    .bind(kind)
    .bind(now)
    .fetch_optional(e)
    .await)?)
}
