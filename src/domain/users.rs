//! Users: creation and lookup. Changes go through `permissions`.

use secrecy::{ExposeSecret, SecretString};

use std::sync::Arc;

use super::audit::Actor;
use super::clients::dedup;
use super::clock::Clock;
use super::events::EventBus;
use super::passwords::Passwords;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Db;
use crate::store::users::UserRow;
use crate::store::{self, StoreError, to_json};

/// A user as the HTTP surface and the command line see it: roles parsed once, at
/// the store boundary, and no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The stable id (a UUID), the `sub` of the user's tokens.
    pub id: String,
    /// As registered; looked up up to ASCII case.
    pub username: String,
    /// The user's roles now.
    pub roles: Vec<String>,
    /// Grows with every role, password or disabled change: the `ver` claim.
    pub authz_version: i64,
    /// A disabled user cannot sign in and their tokens are no longer live.
    pub disabled: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    /// Fails only on a row whose roles are not a JSON list (a corrupt database).
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            roles: row.roles()?,
            id: row.id,
            username: row.username,
            authz_version: row.authz_version,
            disabled: row.disabled,
        })
    }
}

/// A stored user, if any, as a [`User`].
pub(super) fn user_of(row: Option<UserRow>) -> Result<Option<User>, StoreError> {
    row.map(User::try_from).transpose()
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NewUserError {
    /// The username, password or roles break a rule; the text says which and is safe to show.
    #[error("{0}")]
    Invalid(&'static str),
    /// The username is taken (up to ASCII case).
    #[error("a user with this username already exists")]
    Exists,
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// 1-256 characters, no control characters; the error text is safe to show.
pub fn validate_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err("username must be 1-256 characters without control characters");
    }
    Ok(())
}

/// 8-1024 characters; nothing else is imposed. The error text is safe to show.
pub fn validate_password(p: &SecretString) -> Result<(), &'static str> {
    let len = p.expose_secret().chars().count();
    if !(8..=1024).contains(&len) {
        return Err("password must be 8-1024 characters");
    }
    Ok(())
}

/// The roles a user may hold, as stored: at most 256 names, each 1-128 characters
/// without commas (the command line's lists) or control characters; duplicates are
/// dropped, first one kept. Every operation that sets roles goes through it, so no
/// caller can skip it; the error text is safe to show.
pub fn valid_roles(mut roles: Vec<String>) -> Result<Vec<String>, &'static str> {
    if roles.len() > 256
        || roles.iter().any(|r| {
            r.is_empty() || r.chars().count() > 128 || r.chars().any(|c| c.is_control() || c == ',')
        })
    {
        return Err(
            "roles must be at most 256 non-empty names of up to 128 characters, without commas or control characters",
        );
    }
    dedup(&mut roles);
    Ok(roles)
}

/// Users and their permissions: creation, lookup and the one change path
/// ([`permissions`](super::permissions)). Holds no keys, so `tessera user …` builds it
/// alone; cheap to clone (the server's parts, shared).
#[derive(Clone)]
pub struct Users {
    /// The settings (the permission-change policy).
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The server's clock.
    pub clock: Arc<Clock>,
    /// The argon2 workers.
    pub passwords: Passwords,
    /// Woken after a change commits; inert in a command.
    pub events: Arc<EventBus>,
    /// Counts the sessions a change revoked.
    pub metrics: Arc<Metrics>,
}

impl Users {
    /// Users over the server's parts, with the argon2 workers the settings ask for.
    pub fn new(
        cfg: Arc<Config>,
        db: Db,
        clock: Arc<Clock>,
        events: Arc<EventBus>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, super::passwords::ParamsError> {
        let passwords = Passwords::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_queue,
        )?;
        Ok(Self {
            cfg,
            db,
            clock,
            passwords,
            events,
            metrics,
        })
    }

    /// Connects and migrates, for a command that changes users and needs nothing else
    /// (no signing keys, no KEK).
    pub async fn open(cfg: Config) -> Result<Self, super::StartError> {
        let db = super::database(&cfg).await?;
        let cfg = Arc::new(cfg);
        Ok(Self::new(
            cfg,
            db,
            Arc::default(),
            Arc::default(),
            Arc::default(),
        )?)
    }

    /// Creates an enabled user with a fresh UUID, hashing the password with argon2id;
    /// `Exists` when the username is taken.
    pub async fn create_user(
        &self,
        by: &Actor,
        username: &str,
        password: SecretString,
        roles: Vec<String>,
    ) -> Result<User, NewUserError> {
        validate_username(username).map_err(NewUserError::Invalid)?;
        validate_password(&password).map_err(NewUserError::Invalid)?;
        let roles = valid_roles(roles).map_err(NewUserError::Invalid)?;
        let hash = self.passwords.hash(password).await;
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now();
        let mut tx = self.db.begin().await.map_err(NewUserError::Store)?;
        match store::users::insert(&mut tx, &id, username, &hash, &to_json(&roles), now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(NewUserError::Exists),
            Err(e) => return Err(NewUserError::Store(e)),
        }
        let details = serde_json::json!({ "roles": roles });
        by.record(&mut tx, "create_user", Some(&id), Some(details), now)
            .await
            .map_err(NewUserError::Store)?;
        tx.commit()
            .await
            .map_err(|e| NewUserError::Store(e.into()))?;
        store::users::by_id(&self.db.read, &id)
            .await
            .and_then(user_of)
            .map_err(NewUserError::Store)?
            .ok_or(NewUserError::Invalid("user vanished"))
    }

    /// The user whose username matches up to ASCII case, if any.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        user_of(store::users::by_username(&self.db.read, username).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(names: &[&str]) -> Vec<String> {
        names.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn roles_are_kept_in_order_without_duplicates() {
        assert_eq!(
            valid_roles(roles(&["editor", "viewer", "editor"])),
            Ok(roles(&["editor", "viewer"]))
        );
        assert_eq!(valid_roles(vec![]), Ok(vec![]));
        assert_eq!(
            valid_roles(roles(&["é".repeat(128).as_str()])).map(|r| r.len()),
            Ok(1)
        );
    }

    #[test]
    fn roles_refused() {
        for bad in [
            roles(&[""]),
            roles(&["a,b"]),
            roles(&["tab\there"]),
            roles(&["new\nline"]),
            roles(&["x".repeat(129).as_str()]),
            (0..257).map(|i| format!("r{i}")).collect(),
        ] {
            assert!(valid_roles(bad.clone()).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..256).map(|i| format!("r{i}")).collect();
        assert_eq!(valid_roles(many.clone()), Ok(many));
    }

    #[test]
    fn usernames_and_passwords() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a\u{7}").is_err());
        assert!(validate_username(&"a".repeat(257)).is_err());
        assert!(validate_password(&SecretString::from("12345678")).is_ok());
        assert!(validate_password(&SecretString::from("1234567")).is_err());
        assert!(validate_password(&SecretString::from("x".repeat(1025))).is_err());
    }
}
