//! The one permission-change path, used by the admin API and the CLI alike.
//!
//! In one transaction: update the user, bump `authz_version`, revoke the user's
//! live refresh families as the policy says, append the security events. Nothing
//! is announced before the commit.

use secrecy::SecretString;
use serde_json::json;

use super::audit::Actor;
use super::users::{User, Users, valid_roles, validate_password};
use crate::config::PermissionChangePolicy;
use crate::store::events::NewEvent;
use crate::store::users::UserRow;
use crate::store::{self, StoreError, to_json};

/// An operator's change to a user, each of which ends or refreshes the user's live tokens per
/// the permission-change policy.
pub enum Change {
    /// Replace the roles.
    Roles(Vec<String>),
    /// Disable the account: every session ends.
    Disable,
    /// Set a new password: every session ends.
    Password(SecretString),
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The new roles or password break a rule; the text says which and is safe to show.
    #[error("{0}")]
    Invalid(&'static str),
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The database failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

use super::events::EventKind;

impl Users {
    /// Applies `change` and publishes its event in one transaction; returns the user as changed.
    /// The new roles or password are checked here, before anything is looked up.
    pub async fn change_user(
        &self,
        by: &Actor,
        user_id: &str,
        change: Change,
    ) -> Result<User, ChangeError> {
        let (roles, password_hash, disabled, kind, reason, always_revoke) = match change {
            Change::Roles(roles) => {
                let roles = valid_roles(roles).map_err(ChangeError::Invalid)?;
                (
                    Some(to_json(&roles)),
                    None,
                    None,
                    EventKind::RolesChanged,
                    "roles_changed",
                    false,
                )
            }
            Change::Disable => (
                None,
                None,
                Some(true),
                EventKind::UserDisabled,
                "disabled",
                true,
            ),
            Change::Password(p) => {
                validate_password(&p).map_err(ChangeError::Invalid)?;
                (
                    None,
                    Some(self.passwords.hash(p).await),
                    None,
                    EventKind::PasswordChanged,
                    "password_changed",
                    true,
                )
            }
        };
        let (user, revoked) = store::retry_conflicts(|| {
            self.apply_change(
                by,
                user_id,
                roles.as_deref(),
                password_hash.as_deref(),
                disabled,
                (kind.clone(), reason, always_revoke),
            )
        })
        .await?;
        self.events.wake();
        // Counted after the commit, like everything announced.
        for _ in 0..revoked {
            self.metrics.session_revoked(reason);
        }
        Ok(user.try_into()?)
    }

    /// The transaction of [`Users::change_user`]; returns the user and how many
    /// sessions it revoked.
    async fn apply_change(
        &self,
        by: &Actor,
        user_id: &str,
        roles: Option<&str>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
        (kind, reason, always_revoke): (EventKind, &str, bool),
    ) -> Result<(UserRow, u64), ChangeError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let user = store::users::update_bumping_version(
            &mut tx,
            user_id,
            roles,
            password_hash,
            disabled,
            now,
        )
        .await?
        .ok_or(ChangeError::NotFound)?;
        let event = NewEvent {
            kind: kind.as_str(),
            sub: Some(&user.id),
            ver: Some(user.authz_version),
            roles: Some(user.roles.clone()),
            reason: Some(reason),
            ..Default::default()
        };
        store::events::append(&mut tx, &event, now).await?;
        let (action, details) = match kind {
            EventKind::RolesChanged => ("set_roles", Some(json!({ "roles": user.roles()? }))),
            EventKind::UserDisabled => ("disable_user", None),
            _ => ("set_password", None),
        };
        by.record(&mut tx, action, Some(&user.id), details, now)
            .await?;
        let mut revoked = 0;
        if always_revoke || self.policy_in_force(&mut tx).await? == PermissionChangePolicy::Revoke {
            for sid in store::sessions::revoke_user_families(&mut tx, &user.id, reason, now).await?
            {
                let event = NewEvent {
                    kind: EventKind::SessionRevoked.as_str(),
                    sub: Some(&user.id),
                    sid: Some(&sid),
                    reason: Some(reason),
                    ..Default::default()
                };
                store::events::append(&mut tx, &event, now).await?;
                revoked += 1;
            }
            // The browser session at tessera would sign the user straight back in.
            super::browser::end_user_sessions(&mut tx, &user.id, now).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok((user, revoked))
    }
}

/// Where the policy the server runs with is recorded, so that a CLI (or another
/// instance) started with other settings applies the same one.
const POLICY_META: &str = "permission_change_policy";

impl Users {
    /// Records this server's `permission_change_policy` as the one in force; called
    /// when a server starts. Says so when it replaces a different one.
    pub async fn record_policy(&self) -> Result<(), StoreError> {
        let ours = self.cfg.permission_change_policy.as_str();
        let mut tx = self.db.begin().await?;
        let before = store::keys::meta(&mut tx, POLICY_META).await?;
        store::keys::set_meta(&mut tx, POLICY_META, ours.as_bytes()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(before) = before.filter(|b| b != ours.as_bytes()) {
            tracing::warn!(
                before = %String::from_utf8_lossy(&before),
                now = ours,
                "permission_change_policy changed; every instance should run with the same one"
            );
        }
        Ok(())
    }

    /// The policy recorded by the server, else this process's own setting.
    async fn policy_in_force(
        &self,
        tx: &mut store::Tx,
    ) -> Result<PermissionChangePolicy, StoreError> {
        let recorded = store::keys::meta(&mut *tx, POLICY_META).await?;
        Ok(recorded
            .and_then(|v| PermissionChangePolicy::parse(std::str::from_utf8(&v).ok()?))
            .unwrap_or(self.cfg.permission_change_policy))
    }
}
