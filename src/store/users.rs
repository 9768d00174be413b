use sqlx::FromRow;

use super::{Exec, StoreError, conflict, from_json, on};

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
    db: impl Into<Exec<'_>>,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(username)
        .fetch_optional(e)
        .await)?)
}

pub async fn by_id(db: impl Into<Exec<'_>>, id: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(e)
        .await)?)
}

pub async fn insert(
    db: impl Into<Exec<'_>>,
    id: &str,
    username: &str,
    password_hash: &str,
    roles: &str,
    now: i64,
) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO users (id, username, password_hash, roles, authz_version, disabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, FALSE, $5, $5)",
    )
    .bind(id)
    .bind(username)
    .bind(password_hash)
    .bind(roles)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict)?;
    Ok(())
}

/// Applies a change and bumps `authz_version`; returns the updated row.
pub async fn update_bumping_version(
    db: impl Into<Exec<'_>>,
    id: &str,
    roles: Option<&str>,
    password_hash: Option<&str>,
    disabled: Option<bool>,
    now: i64,
) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "UPDATE users SET roles = COALESCE($1, roles), password_hash = COALESCE($2, password_hash),
                disabled = COALESCE($3, disabled), authz_version = authz_version + 1, updated_at = $4
         WHERE id = $5 RETURNING {COLUMNS}"
    );
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(roles)
        .bind(password_hash)
        .bind(disabled)
        .bind(now)
        .bind(id)
        .fetch_optional(e)
        .await)?)
}
