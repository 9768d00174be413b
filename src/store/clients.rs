//! Registered clients (apps) as stored; list columns hold JSON arrays of strings.

use sqlx::FromRow;

use super::{Backend, Exec, StoreError, conflict, on};

/// A client's registration, read by the domain's client cache.
#[derive(Debug, Clone, FromRow)]
pub struct ClientRow {
    /// The `client_id` the client presents; chosen at registration, unique.
    pub id: String,
    /// SHA-256 of the generated client secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// JSON list of the grant types the client may use at `/token`.
    pub grant_types: String,
    /// JSON list of the scopes the client may request.
    pub scopes: String,
    /// JSON list of the audiences (`aud`) its tokens may carry; empty: the issuer.
    pub audiences: String,
    /// JSON list of the roles granted to the client itself (client-credentials tokens).
    pub roles: String,
    /// JSON list of capabilities (`introspect`, `events`): the protected endpoints it may call.
    pub capabilities: String,
    /// Seconds; `None`: the server's `refresh_reuse_grace`.
    pub refresh_reuse_grace: Option<i64>,
    /// JSON list of exact redirect URIs for the authorization code flow.
    pub redirect_uris: String,
    /// JSON list of browser origins allowed by CORS for this client.
    pub origins: String,
    /// True when the user must consent before the client gets a code.
    pub third_party: bool,
    /// JSON list of where `/end_session` may send the browser afterwards.
    pub post_logout_redirect_uris: String,
    /// The JWS alg of its ID tokens; `None`: the deployment's.
    pub id_token_signed_response_alg: Option<String>,
    /// True when its users must sign in with a second factor.
    pub require_mfa: bool,
}

/// The client registered as `id`, if any.
pub async fn by_id(db: impl Into<Exec<'_>>, id: &str) -> Result<Option<ClientRow>, StoreError> {
    Ok(on!(db.into(), |e| {
        sqlx::query_as(
        "SELECT id, secret_hash, grant_types, scopes, audiences, roles, capabilities, refresh_reuse_grace,
                redirect_uris, origins, third_party, post_logout_redirect_uris,
                id_token_signed_response_alg, require_mfa
         FROM clients WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await
    })?)
}

/// Registers a client, created at `now`; `Conflict` when the id is taken.
pub async fn insert(db: impl Into<Exec<'_>>, row: &ClientRow, now: i64) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO clients (id, secret_hash, grant_types, scopes, audiences, roles, capabilities, created_at, refresh_reuse_grace,
           redirect_uris, origins, third_party, post_logout_redirect_uris, id_token_signed_response_alg, require_mfa)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&row.id)
    .bind(&row.secret_hash)
    .bind(&row.grant_types)
    .bind(&row.scopes)
    .bind(&row.audiences)
    .bind(&row.roles)
    .bind(&row.capabilities)
    .bind(now)
    .bind(row.refresh_reuse_grace)
    .bind(&row.redirect_uris)
    .bind(&row.origins)
    .bind(row.third_party)
    .bind(&row.post_logout_redirect_uris)
    .bind(&row.id_token_signed_response_alg)
    .bind(row.require_mfa)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict)?;
    Ok(())
}

/// Whether some client registered `origin` for CORS.
pub async fn origin_registered(db: impl Into<Exec<'_>>, origin: &str) -> Result<bool, StoreError> {
    let db = db.into();
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT 1 FROM clients, json_each(clients.origins) AS j WHERE j.value = $1 LIMIT 1"
        }
        Backend::Postgres => {
            "SELECT 1 FROM clients, jsonb_array_elements_text(clients.origins::jsonb) AS j(value) WHERE j.value = $1 LIMIT 1"
        }
    };
    let row: Option<(i32,)> = on!(db, |e| sqlx::query_as(sql)
        .bind(origin)
        .fetch_optional(e)
        .await)?;
    Ok(row.is_some())
}
