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
    /// SHA-256 of the secret a rotation replaced, accepted until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// When the replaced secret stops working (Unix seconds).
    pub previous_secret_expires_at: Option<i64>,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, secret_hash, grant_types, scopes, audiences, roles, capabilities, refresh_reuse_grace,
    redirect_uris, origins, third_party, post_logout_redirect_uris, id_token_signed_response_alg,
    previous_secret_hash, previous_secret_expires_at, created_at";

/// The client registered as `id`, if any.
pub async fn by_id(db: impl Into<Exec<'_>>, id: &str) -> Result<Option<ClientRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(e)
        .await)?)
}

/// Registers a client, created at `now`; `Conflict` when the id is taken.
pub async fn insert(db: impl Into<Exec<'_>>, row: &ClientRow, now: i64) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "INSERT INTO clients (id, secret_hash, grant_types, scopes, audiences, roles, capabilities, created_at, refresh_reuse_grace,
           redirect_uris, origins, third_party, post_logout_redirect_uris, id_token_signed_response_alg)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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

/// At most `limit` clients in id order, after `after_id`, whose id starts with
/// `prefix` (compared as bytes: `LIKE` would treat `%` and `_` in an id as wildcards).
pub async fn page(
    db: impl Into<Exec<'_>>,
    prefix: Option<&str>,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<ClientRow>, StoreError> {
    let db = db.into();
    let prefix_match = match db.backend() {
        Backend::Sqlite => "substr(id, 1, length($1)) = $1",
        Backend::Postgres => "left(id, length($1)) = $1",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM clients
         WHERE ($1 = '' OR {prefix_match}) AND id > $2 ORDER BY id LIMIT $3"
    );
    Ok(on!(db, |e| sqlx::query_as(&sql)
        .bind(prefix.unwrap_or(""))
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(e)
        .await)?)
}

/// Replaces what an operator may change of a client (not its id, secret or kind);
/// false when there is no such client.
pub async fn update(db: impl Into<Exec<'_>>, row: &ClientRow) -> Result<bool, StoreError> {
    let done = on!(db.into(), |e| sqlx::query(
        "UPDATE clients SET grant_types = $2, scopes = $3, audiences = $4, roles = $5,
           capabilities = $6, refresh_reuse_grace = $7, redirect_uris = $8, origins = $9,
           third_party = $10, post_logout_redirect_uris = $11, id_token_signed_response_alg = $12
         WHERE id = $1",
    )
    .bind(&row.id)
    .bind(&row.grant_types)
    .bind(&row.scopes)
    .bind(&row.audiences)
    .bind(&row.roles)
    .bind(&row.capabilities)
    .bind(row.refresh_reuse_grace)
    .bind(&row.redirect_uris)
    .bind(&row.origins)
    .bind(row.third_party)
    .bind(&row.post_logout_redirect_uris)
    .bind(&row.id_token_signed_response_alg)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// A confidential client's new secret hash; the one it replaces stays accepted until
/// `previous_expires_at` (`None`: refused at once). False when no confidential client
/// has this id.
pub async fn replace_secret(
    db: impl Into<Exec<'_>>,
    id: &str,
    hash: &[u8],
    previous_expires_at: Option<i64>,
) -> Result<bool, StoreError> {
    let done = on!(db.into(), |e| sqlx::query(
        "UPDATE clients SET
           previous_secret_hash = CASE WHEN $3 IS NULL THEN NULL ELSE secret_hash END,
           previous_secret_expires_at = $3,
           secret_hash = $2
         WHERE id = $1 AND secret_hash IS NOT NULL",
    )
    .bind(id)
    .bind(hash)
    .bind(previous_expires_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// The client's families that are not revoked (expired ones too: revoking them costs
/// nothing and leaves no doubt).
pub async fn live_families(
    db: impl Into<Exec<'_>>,
    client_id: &str,
) -> Result<Vec<super::sessions::FamilyRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM refresh_families f WHERE f.client_id = $1 AND f.revoked_at IS NULL
         ORDER BY f.created_at",
        super::sessions::FAMILY_COLUMNS
    );
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(client_id)
        .fetch_all(e)
        .await)?)
}

/// Drops the client's unredeemed authorization codes issued for `redirect_uri`; how many.
pub async fn forget_codes_for(
    db: impl Into<Exec<'_>>,
    client_id: &str,
    redirect_uri: &str,
) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| sqlx::query(
        "DELETE FROM authorization_codes
         WHERE client_id = $1 AND redirect_uri = $2 AND consumed_at IS NULL"
    )
    .bind(client_id)
    .bind(redirect_uri)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Deletes a client and everything that names it: its codes, consents, refresh tokens
/// and families (revoke them first, for the feed), its SSF streams (by cascade).
/// False when there is no such client.
pub async fn delete(db: impl Into<Exec<'_>>, id: &str) -> Result<bool, StoreError> {
    let mut db = db.into();
    for sql in [
        "DELETE FROM authorization_codes WHERE client_id = $1",
        "DELETE FROM consents WHERE client_id = $1",
        "DELETE FROM refresh_tokens WHERE family_id IN
           (SELECT id FROM refresh_families WHERE client_id = $1)",
        "DELETE FROM refresh_families WHERE client_id = $1",
    ] {
        on!(db.re(), |e| sqlx::query(sql)
            .bind(id)
            .execute(e)
            .await
            .map(|r| r.rows_affected()))?;
    }
    let done = on!(db, |e| sqlx::query("DELETE FROM clients WHERE id = $1")
        .bind(id)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Counts a change to some client, in the change's transaction; instances compare
/// [`version`] with what they last saw to drop their caches.
pub async fn bump_version(db: impl Into<Exec<'_>>) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "UPDATE client_changes SET version = version + 1 WHERE one = 1"
    )
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many client changes there have been.
pub async fn version(db: impl Into<Exec<'_>>) -> Result<i64, StoreError> {
    let (v,): (i64,) = on!(db.into(), |e| sqlx::query_as(
        "SELECT version FROM client_changes WHERE one = 1"
    )
    .fetch_one(e)
    .await)?;
    Ok(v)
}
