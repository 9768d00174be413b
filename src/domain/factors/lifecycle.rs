//! A credential change: a second factor added or removed, recovery codes replaced, or an
//! operator's reset. By the password change's rules (see `permissions`): the user's
//! `ver` grows, their refresh families are revoked and their browser sessions end, with
//! a `user.credential_changed` event and a `session.revoked` per family, in the change's
//! transaction. The user's own change keeps the browser session they made it from.

use super::FactorError;
use super::session_hash;
use crate::domain::audit::Actor;
use crate::domain::events::EventKind;
use crate::domain::users::Users;
use crate::store::events::NewEvent;
use crate::store::{self, StoreError};

impl Users {
    /// Finishes a credential change made in `tx`: the event, the revocations, the commit.
    /// `keep`: the cookie of the browser session that stays (the user's own change).
    pub async fn credential_changed(
        &self,
        mut tx: store::Tx,
        user_id: &str,
        reason: &str,
        keep: Option<&str>,
    ) -> Result<(), FactorError> {
        let now = self.clock.now();
        let user = store::users::update_bumping_version(&mut tx, user_id, None, None, None, now)
            .await?
            .ok_or(FactorError::NotFound)?;
        let event = NewEvent {
            kind: EventKind::CredentialChanged.as_str(),
            sub: Some(user_id),
            ver: Some(user.authz_version),
            reason: Some(reason),
            ..Default::default()
        };
        store::events::append(&mut tx, &event, now).await?;
        let sids = store::sessions::revoke_user_families(&mut tx, user_id, reason, now).await?;
        for sid in &sids {
            let event = NewEvent {
                kind: EventKind::SessionRevoked.as_str(),
                sub: Some(user_id),
                sid: Some(sid),
                reason: Some(reason),
                ..Default::default()
            };
            store::events::append(&mut tx, &event, now).await?;
        }
        match keep {
            Some(token) => {
                let hash = session_hash(token);
                store::browser::revoke_other_sessions(&mut tx, user_id, &hash, now).await?;
            }
            None => {
                crate::domain::browser::end_user_sessions(&mut tx, user_id, now).await?;
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.events.wake();
        for _ in &sids {
            self.metrics.session_revoked(reason);
        }
        Ok(())
    }

    /// An operator's reset (`by`, recorded in the audit trail): every second factor,
    /// passkey and recovery code of the user removed (for a user who lost them); every session ends.
    /// Returns how many factors there were.
    pub async fn reset_factors(&self, by: &Actor, user_id: &str) -> Result<u64, FactorError> {
        let mut tx = self.db.begin().await?;
        if store::users::by_id(&mut tx, user_id).await?.is_none() {
            return Err(FactorError::NotFound);
        }
        let removed = store::factors::delete_all(&mut tx, user_id).await?
            + store::passkeys::delete_all(&mut tx, user_id).await?;
        let details = serde_json::json!({ "factors_removed": removed });
        by.record(
            &mut tx,
            "reset_factors",
            Some(user_id),
            Some(details),
            self.clock.now(),
        )
        .await?;
        self.credential_changed(tx, user_id, "mfa_reset", None)
            .await?;
        Ok(removed)
    }
}
