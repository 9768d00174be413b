//! Reads the HTTP surface answers with (the admin API, discovery), so that
//! `http` goes through the domain and never names `store`.

use super::Core;
use crate::store::{self, StoreError};

pub use super::users::User;
use super::users::user_of;
/// A live session (a refresh-token family).
pub type Session = store::sessions::FamilyRow;
/// A signing key's record (its state and when it changed).
pub type KeyRecord = store::keys::KeyRow;
/// A storage failure, as the HTTP surface carries it to `HttpError`.
pub type StorageError = StoreError;

impl Core {
    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        user_of(store::users::by_id(&self.db.read, id).await?)
    }

    /// Whether some client registered `origin` (CORS).
    pub async fn origin_registered(&self, origin: &str) -> Result<bool, StoreError> {
        store::clients::origin_registered(&self.db.read, origin).await
    }

    /// The live sessions of a user; `None` when there is no such user.
    pub async fn live_sessions(&self, user_id: &str) -> Result<Option<Vec<Session>>, StoreError> {
        if self.user(user_id).await?.is_none() {
            return Ok(None);
        }
        let families =
            store::sessions::live_families_of(&self.db.read, user_id, self.clock.now()).await?;
        Ok(Some(families))
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        store::keys::list(&self.db.read).await
    }
}
