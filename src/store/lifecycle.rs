//! A user's way back (enable) and out (erase): the writes of `tessera user enable|delete`
//! and their admin API twins.

use super::users::UserRow;
use super::{Exec, StoreError, on};

/// Enables a disabled user and bumps `authz_version`; `None` when there is no such
/// user or it is not disabled (nothing changed).
pub async fn enable(
    db: impl Into<Exec<'_>>,
    id: &str,
    now: i64,
) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "UPDATE users SET disabled = FALSE, authz_version = authz_version + 1, updated_at = $1
         WHERE id = $2 AND disabled RETURNING {}",
        super::users::COLUMNS
    );
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(now)
        .bind(id)
        .fetch_optional(e)
        .await)?)
}

/// The statements, children first (each table's foreign keys point at the ones after it).
const ERASE: [&str; 10] = [
    "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = $1)",
    "DELETE FROM refresh_families WHERE user_id = $1",
    "DELETE FROM authorization_codes WHERE user_id = $1",
    "DELETE FROM browser_sessions WHERE user_id = $1",
    "DELETE FROM consents WHERE user_id = $1",
    "DELETE FROM factors WHERE user_id = $1",
    "DELETE FROM recovery_codes WHERE user_id = $1",
    "DELETE FROM passkeys WHERE user_id = $1",
    "DELETE FROM webauthn_ceremonies WHERE user_id = $1",
    "DELETE FROM users WHERE id = $1",
];

/// Deletes the user row (username, password hash, roles), their refresh families and
/// tokens, codes, browser sessions, consents, second factors, passkeys and recovery codes, inside
/// the caller's transaction.
/// The security event log and the audit trail keep the id alone. Whether a user row
/// was deleted.
pub async fn erase_user(db: impl Into<Exec<'_>>, user_id: &str) -> Result<bool, StoreError> {
    let mut db = db.into();
    let mut deleted = 0;
    for sql in ERASE {
        deleted = on!(db.re(), |e| sqlx::query(sql)
            .bind(user_id)
            .execute(e)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(deleted == 1)
}
