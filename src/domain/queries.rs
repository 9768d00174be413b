//! Reads the HTTP surface answers with (the admin API, discovery), so that
//! `http` goes through the domain and never names `store`.

use super::clients::Clients;
use super::keys::Keys;
use super::users::Users;
use crate::store::{self, StoreError};

pub use super::users::User;
use super::users::{user_of, valid_roles, validate_username};
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

/// A user as an operator lists them: the [`User`] and when it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUser {
    /// The user now.
    pub user: User,
    /// Unix seconds.
    pub created_at: i64,
}

impl TryFrom<store::users::ListedRow> for ListedUser {
    type Error = StoreError;

    fn try_from(row: store::users::ListedRow) -> Result<Self, StoreError> {
        Ok(Self {
            user: User::try_from(row.user)?,
            created_at: row.created_at,
        })
    }
}

/// What an operator searches the users by; `None` narrows nothing.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    /// A username prefix, matched as usernames are (up to ASCII letter case).
    pub prefix: Option<String>,
    /// Only users holding this role.
    pub role: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    pub disabled: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the user list, in username order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// At most the limit asked for.
    pub users: Vec<ListedUser>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a page of the user list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The cursor is not one a page handed out.
    #[error("malformed cursor: pass the next_cursor of the previous page unchanged")]
    BadCursor,
    /// A search term breaks the rules a username or role follows; the text says which.
    #[error("{0}")]
    Invalid(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cursor is the last listed username key, base64url: opaque to callers and, being
/// a key rather than an offset, stable when users are added between pages.
fn cursor_of(key: &str) -> String {
    crate::crypto::b64(key.as_bytes())
}

fn key_of_cursor(cursor: &str) -> Result<String, ListError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ListError::BadCursor)?;
    let key = String::from_utf8(bytes).map_err(|_| ListError::BadCursor)?;
    // A NUL would reach PostgreSQL as an encoding error: refuse what no key holds.
    if key.chars().any(char::is_control) {
        return Err(ListError::BadCursor);
    }
    Ok(key)
}

/// The prefix as a username key, `None` when empty; refuses what no username holds.
fn prefix_key(prefix: Option<&str>) -> Result<Option<String>, ListError> {
    match prefix {
        None | Some("") => Ok(None),
        Some(p) if validate_username(p).is_err() => Err(ListError::Invalid(
            "prefix must be at most 256 characters without control characters",
        )),
        Some(p) => Ok(Some(store::users::username_key(p))),
    }
}

impl Users {
    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        user_of(store::users::by_id(&self.db.read, id).await?)
    }

    /// A page of at most `limit` users matching `search`, in username key order.
    pub async fn list_users(&self, search: &UserSearch, limit: u32) -> Result<UserPage, ListError> {
        let after = search.cursor.as_deref().map(key_of_cursor).transpose()?;
        let prefix = prefix_key(search.prefix.as_deref())?;
        if let Some(role) = &search.role {
            valid_roles(vec![role.clone()]).map_err(|_| {
                ListError::Invalid(
                    "role must be 1-128 characters without commas or control characters",
                )
            })?;
        }
        let filter = store::users::Filter {
            key_prefix: prefix.as_deref(),
            role: search.role.as_deref(),
            disabled: search.disabled,
            after_key: after.as_deref(),
        };
        // One more than asked says whether a next page exists.
        let mut rows = store::users::page(&self.db.read, &filter, i64::from(limit) + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(cursor_of(&store::users::username_key(&last.user.username))),
            _ => None,
        };
        let users = rows
            .into_iter()
            .map(ListedUser::try_from)
            .collect::<Result<_, _>>()?;
        Ok(UserPage { users, next_cursor })
    }

    /// A user by id with when it was created.
    pub async fn listed_user(&self, id: &str) -> Result<Option<ListedUser>, StoreError> {
        store::users::listed_by_id(&self.db.read, id)
            .await?
            .map(ListedUser::try_from)
            .transpose()
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
