//! Browser sessions at tessera (single sign-on) and remembered consent.

use super::{Exec, StoreError, on};

/// Stores a browser session by the SHA-256 of its cookie; times are Unix seconds.
pub async fn insert_session(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    user_id: &str,
    (auth_time, expires_at): (i64, i64),
    amr: &str,
) -> Result<(), StoreError> {
    on!(db.into(), |e| {
        sqlx::query(
        "INSERT INTO browser_sessions (hash, user_id, auth_time, expires_at, amr) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(auth_time)
    .bind(expires_at)
    .bind(amr)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A live session's user, sign-in time and methods (`amr`): not revoked, not expired,
/// user enabled.
pub async fn live_session(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    now: i64,
) -> Result<Option<(String, i64, String)>, StoreError> {
    Ok(on!(db.into(), |e| {
        sqlx::query_as(
        "SELECT s.user_id, s.auth_time, s.amr FROM browser_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND NOT u.disabled",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(e)
    .await
    })?)
}

/// Ends one browser session (sign-out); a no-op when it already ended.
pub async fn revoke_session(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "UPDATE browser_sessions SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records a second factor on a live session: its methods become `amr` and its sign-in
/// time `auth_time`.
pub async fn set_amr(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    amr: &str,
    auth_time: i64,
) -> Result<(), StoreError> {
    on!(db.into(), |e| {
        sqlx::query(
        "UPDATE browser_sessions SET amr = $2, auth_time = $3 WHERE hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .bind(amr)
    .bind(auth_time)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Ends every browser session of a user but the one whose hash is `keep`; returns how many.
pub async fn revoke_other_sessions(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    keep: &[u8],
    now: i64,
) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "UPDATE browser_sessions SET revoked_at = $3
         WHERE user_id = $1 AND hash <> $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(keep)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Ends every browser session of a user; returns how many.
pub async fn revoke_user_sessions(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "UPDATE browser_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Whether the user already consented to exactly this scope set for this client;
/// `scope` is in the domain's canonical form (sorted, space-joined).
pub async fn has_consent(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    client_id: &str,
    scope: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = on!(db.into(), |e| sqlx::query_as(
        "SELECT created_at FROM consents WHERE user_id = $1 AND client_id = $2 AND scope = $3",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(scope)
    .fetch_optional(e)
    .await)?;
    Ok(row.is_some())
}

/// Remembers a consent (`scope` canonical, as for [`has_consent`]); giving the same
/// one twice is a no-op.
pub async fn insert_consent(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, client_id, scope) DO NOTHING",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(scope)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Withdraws every consent a user gave a client; returns how many.
pub async fn delete_consents(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    client_id: &str,
) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "DELETE FROM consents WHERE user_id = $1 AND client_id = $2"
    )
    .bind(user_id)
    .bind(client_id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}
