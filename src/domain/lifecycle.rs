//! A user's way back and way out: enabling a disabled user, and deleting a user with
//! everything personal they left (the event log and the audit trail keep the id alone).

use super::audit::Actor;
use super::events::EventKind;
use super::permissions::ChangeError;
use super::users::{User, Users};
use crate::store::events::NewEvent;
use crate::store::{self, StoreError};

/// The `reason` of the events a deletion writes.
pub const DELETED: &str = "user_deleted";

impl Users {
    /// Enables a disabled user: bumps `ver` and writes `user.enabled`, so that a verifier
    /// which refused the disabled user accepts the tokens minted from now on (and only
    /// those). Enabling an enabled user changes nothing and records nothing: the user
    /// as it is, and `false`.
    pub async fn enable_user(&self, by: &Actor, id: &str) -> Result<(User, bool), ChangeError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(row) = store::lifecycle::enable(&mut tx, id, now).await? else {
            drop(tx);
            let user = self.user(id).await?.ok_or(ChangeError::NotFound)?;
            return Ok((user, false));
        };
        let event = NewEvent {
            kind: EventKind::UserEnabled.as_str(),
            sub: Some(&row.id),
            ver: Some(row.authz_version),
            reason: Some("enabled"),
            ..Default::default()
        };
        store::events::append(&mut tx, &event, now).await?;
        by.record(&mut tx, "enable_user", Some(&row.id), None, now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.events.wake();
        Ok((row.try_into()?, true))
    }

    /// Deletes a user in one transaction: disables them (`user.disabled`, reason
    /// `user_deleted`, so every verifier refuses their outstanding access tokens at
    /// once), revokes every refresh family (`session.revoked` each), then erases the
    /// user row, families, codes, browser sessions and consents. Their username is
    /// free again; a new user gets a new id. `NotFound` when there is no such user.
    pub async fn delete_user(&self, by: &Actor, id: &str) -> Result<(), ChangeError> {
        let revoked = store::retry_conflicts(|| self.erase(by, id)).await?;
        self.events.wake();
        for _ in 0..revoked {
            self.metrics.session_revoked(DELETED);
        }
        Ok(())
    }

    async fn erase(&self, by: &Actor, id: &str) -> Result<u64, ChangeError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        // The same write as a disable: it locks the row and gives the version to announce.
        let user = store::users::update_bumping_version(&mut tx, id, None, None, Some(true), now)
            .await?
            .ok_or(ChangeError::NotFound)?;
        let sids = store::sessions::revoke_user_families(&mut tx, id, DELETED, now).await?;
        let disabled = NewEvent {
            kind: EventKind::UserDisabled.as_str(),
            sub: Some(id),
            ver: Some(user.authz_version),
            reason: Some(DELETED),
            ..Default::default()
        };
        store::events::append(&mut tx, &disabled, now).await?;
        for sid in &sids {
            let event = NewEvent {
                kind: EventKind::SessionRevoked.as_str(),
                sub: Some(id),
                sid: Some(sid),
                reason: Some(DELETED),
                ..Default::default()
            };
            store::events::append(&mut tx, &event, now).await?;
        }
        store::lifecycle::erase_user(&mut tx, id).await?;
        let details = serde_json::json!({ "sessions_revoked": sids.len() });
        by.record(&mut tx, "delete_user", Some(id), Some(details), now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(sids.len() as u64)
    }
}
