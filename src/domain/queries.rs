//! Reads the HTTP surface answers with (the admin API, discovery), so that
//! `http` goes through the domain and never names `store`.

use super::clients::Clients;
use super::keys::Keys;
use super::users::Users;
use crate::store::{self, StoreError};

pub use super::users::User;
use super::users::user_of;
/// A storage failure, as the domain's reads and changes report it (the HTTP surface
/// answers it with its internal error).
pub use crate::store::StoreError as StorageError;

/// A live session (a refresh-token family), as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The `sid` of its tokens.
    pub id: String,
    /// The client the tokens were issued to.
    pub client_id: String,
    /// Unix seconds, as are the times below.
    pub created_at: i64,
    /// The last refresh.
    pub last_used_at: i64,
    /// The absolute end of the session.
    pub expires_at: i64,
}

impl From<store::sessions::FamilyRow> for Session {
    fn from(row: store::sessions::FamilyRow) -> Self {
        Self {
            id: row.id,
            client_id: row.client_id,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        }
    }
}

/// A signing key's record, as an operator lists it: its state and when it changed,
/// never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The `kid` of the JWKS and token headers.
    pub kid: String,
    /// The JWS `alg` it signs with.
    pub alg: String,
    /// `next`, `active`, `retired` or `revoked`.
    pub state: String,
    /// The chain it belongs to (`main`, `id_rs256`).
    pub purpose: String,
    /// Unix seconds, as are the stamps below.
    pub created_at: i64,
    /// When it started signing; `None` while `next`.
    pub activated_at: Option<i64>,
    /// When it stopped signing; `None` until retired.
    pub retired_at: Option<i64>,
    /// When it was withdrawn; `None` unless revoked.
    pub revoked_at: Option<i64>,
}

impl From<store::keys::KeyRow> for KeyRecord {
    fn from(row: store::keys::KeyRow) -> Self {
        Self {
            kid: row.kid,
            alg: row.alg,
            state: row.state,
            purpose: row.purpose,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
            revoked_at: row.revoked_at,
        }
    }
}

impl Users {
    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        user_of(store::users::by_id(&self.db.read, id).await?)
    }

    /// The live sessions of a user; `None` when there is no such user.
    pub async fn live_sessions(&self, user_id: &str) -> Result<Option<Vec<Session>>, StoreError> {
        if self.user(user_id).await?.is_none() {
            return Ok(None);
        }
        let families =
            store::sessions::live_families_of(&self.db.read, user_id, self.clock.now()).await?;
        Ok(Some(families.into_iter().map(Session::from).collect()))
    }
}

impl Clients {
    /// Whether some client registered `origin` (CORS).
    pub async fn origin_registered(&self, origin: &str) -> Result<bool, StoreError> {
        store::clients::origin_registered(&self.db.read, origin).await
    }
}

impl Keys {
    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = store::keys::list(&self.db.read).await?;
        Ok(rows.into_iter().map(KeyRecord::from).collect())
    }
}
