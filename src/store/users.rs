use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

use super::{StoreError, conflict, from_json};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub roles: String,
    pub authz_version: i64,
    pub disabled: bool,
}

impl UserRow {
    pub fn roles(&self) -> Result<Vec<String>, StoreError> {
        from_json(&self.roles)
    }
}

const COLUMNS: &str = "id, username, password_hash, roles, authz_version, disabled";

pub async fn by_username(
    db: impl SqliteExecutor<'_>,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE username = ?"))
            .bind(username)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn by_id(db: impl SqliteExecutor<'_>, id: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn insert(
    conn: &mut SqliteConnection,
    id: &str,
    username: &str,
    password_hash: &str,
    roles: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, roles, authz_version, disabled, created_at, updated_at)
         VALUES (?, ?, ?, ?, 1, 0, ?, ?)",
    )
    .bind(id)
    .bind(username)
    .bind(password_hash)
    .bind(roles)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(conflict)?;
    Ok(())
}

/// Applies a change and bumps `authz_version`; returns the updated row.
pub async fn update_bumping_version(
    conn: &mut SqliteConnection,
    id: &str,
    roles: Option<&str>,
    password_hash: Option<&str>,
    disabled: Option<bool>,
    now: i64,
) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE users SET roles = COALESCE(?, roles), password_hash = COALESCE(?, password_hash),
                disabled = COALESCE(?, disabled), authz_version = authz_version + 1, updated_at = ?
         WHERE id = ? RETURNING {COLUMNS}"
    ))
    .bind(roles)
    .bind(password_hash)
    .bind(disabled)
    .bind(now)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}
