//! Refresh families (sessions): starting one at sign-in, revoking one. What
//! happens when a refresh token is used or reused is in [`super::rotation`].

use crate::store::events::NewEvent;
use crate::store::sessions::FamilyRow;
use crate::store::{self, StoreError, to_json};

use super::clock::Clock;
use super::events::EventKind;
use super::signin::SignIn;

impl SignIn {
    /// Starts a family for a fresh sign-in; returns its id (`sid`) and first refresh
    /// token, or `None` when the user is no longer enabled at `authz_version` (the
    /// sign-in read a state that a password change, disable or role change has since
    /// replaced: its session would outlive the revocation that change made).
    pub async fn start_session(
        &self,
        user_id: &str,
        authz_version: i64,
        client_id: &str,
        scope: &str,
        audience: &[String],
        amr: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let now = self.clock.now();
        let family = FamilyRow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.into(),
            client_id: client_id.into(),
            scope: scope.into(),
            audience: to_json(audience),
            created_at: now,
            last_used_at: now,
            expires_at: now + self.cfg.refresh_max_ttl.as_secs() as i64,
            revoked_at: None,
            revoke_reason: None,
            amr: amr.into(),
        };
        let (token, handle, head) = super::rotation::first_token();
        if !store::sessions::insert_family_if_current(
            self.db.writer(),
            &family,
            authz_version,
            &handle,
            &head,
        )
        .await?
        {
            return Ok(None);
        }
        Ok(Some((family.id, token)))
    }
}

/// Revokes a family and records it in the event log, inside the caller's transaction.
pub async fn revoke_family(
    clock: &Clock,
    tx: &mut store::Tx,
    family: &FamilyRow,
    reason: &str,
) -> Result<bool, StoreError> {
    let now = clock.now();
    if !store::sessions::revoke_family(&mut *tx, &family.id, reason, now).await? {
        return Ok(false);
    }
    let event = NewEvent {
        kind: EventKind::SessionRevoked.as_str(),
        sub: Some(&family.user_id),
        sid: Some(&family.id),
        reason: Some(reason),
        ..Default::default()
    };
    store::events::append(tx, &event, now).await?;
    Ok(true)
}
