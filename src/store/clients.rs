use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

use super::{StoreError, conflict};

#[derive(Debug, Clone, FromRow)]
pub struct ClientRow {
    pub id: String,
    pub secret_hash: Option<Vec<u8>>,
    pub grant_types: String,
    pub scopes: String,
    pub audiences: String,
    pub roles: String,
    pub capabilities: String,
}

pub async fn by_id(db: impl SqliteExecutor<'_>, id: &str) -> Result<Option<ClientRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, secret_hash, grant_types, scopes, audiences, roles, capabilities FROM clients WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}

pub async fn insert(
    conn: &mut SqliteConnection,
    row: &ClientRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO clients (id, secret_hash, grant_types, scopes, audiences, roles, capabilities, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&row.id)
    .bind(&row.secret_hash)
    .bind(&row.grant_types)
    .bind(&row.scopes)
    .bind(&row.audiences)
    .bind(&row.roles)
    .bind(&row.capabilities)
    .bind(now)
    .execute(conn)
    .await
    .map_err(conflict)?;
    Ok(())
}

/// The union of every client's scopes, sorted.
pub async fn all_scopes(db: impl SqliteExecutor<'_>) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT j.value FROM clients, json_each(clients.scopes) AS j ORDER BY j.value",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}
