//! Refresh families (sessions) and rotation: what happens when a refresh token
//! is used, reused, or retried within the grace window.

use crate::crypto::{self, sha256};
use crate::error::OAuthError;
use crate::store::events::NewEvent;
use crate::store::sessions::FamilyRow;
use crate::store::users::UserRow;
use crate::store::{self, StoreError, to_json};

use super::Core;

pub const REASON_REUSE: &str = "refresh_token_reuse";

/// Starts a family for a fresh sign-in; returns its id (`sid`) and first refresh token.
pub async fn start(
    core: &Core,
    user_id: &str,
    client_id: &str,
    scope: &str,
    audience: &[String],
) -> Result<(String, String), StoreError> {
    let now = store::now();
    let family = FamilyRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.into(),
        client_id: client_id.into(),
        scope: scope.into(),
        audience: to_json(audience),
        created_at: now,
        last_used_at: now,
        expires_at: now + core.cfg.refresh_max_ttl.as_secs() as i64,
        revoked_at: None,
    };
    let token = crypto::random_token();
    let mut tx = core.db.begin().await?;
    store::sessions::insert_family(&mut tx, &family).await?;
    store::sessions::insert_token(&mut tx, &sha256(token.as_bytes()), &family.id, scope, now)
        .await?;
    tx.commit().await?;
    Ok((family.id, token))
}

pub struct Rotated<T> {
    pub family: FamilyRow,
    pub user: UserRow,
    pub refresh_token: String,
    pub granted: T,
}

/// The key that seals a successor for the grace window: derived from the
/// presented token, which the database never holds, so the database alone never
/// yields a usable refresh token.
fn grace_key(presented: &str) -> [u8; 32] {
    sha256(format!("tessera.grace.v1:{presented}").as_bytes())
}

const INVALID: OAuthError =
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked");

/// Rotates `presented`: consumes it and returns its successor, all in one write
/// transaction. `check` validates the request against the family before anything
/// is consumed.
///
/// - first use: a new token, the old one marked consumed (the conditional update
///   decides a race; writers are serialised, so there is exactly one winner);
/// - a retry within the grace window while the successor is still the family's
///   live head: the same successor again (idempotent; the family never branches);
/// - any other reuse: the whole family is revoked (RFC 9700 §4.14.2) and a
///   `session.revoked` event is written.
pub async fn rotate<T>(
    core: &Core,
    client_id: &str,
    presented: &str,
    check: impl FnOnce(&FamilyRow) -> Result<T, OAuthError>,
) -> Result<Rotated<T>, OAuthError> {
    let hash = sha256(presented.as_bytes());
    let now = store::now();
    let mut tx = core.db.begin().await?;
    let Some(row) = store::sessions::token(&mut *tx, &hash).await? else {
        return Err(INVALID);
    };
    let family = row.family;
    // A token presented by another client is refused without touching the family (RFC 6749 §10.4).
    if family.client_id != client_id || family.revoked_at.is_some() {
        return Err(INVALID);
    }
    let idle = core.cfg.refresh_idle_ttl.as_secs() as i64;
    if now >= family.expires_at || now >= family.last_used_at + idle {
        return Err(INVALID);
    }
    let user = match store::users::by_id(&mut *tx, &family.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(INVALID),
    };
    let granted = check(&family)?;
    let grace = core.cfg.refresh_reuse_grace.as_secs() as i64;

    let successor = match (row.consumed_at, row.successor_hash, row.successor_sealed) {
        (None, _, _) => {
            let next = crypto::random_token();
            let next_hash = sha256(next.as_bytes());
            let sealed = (grace > 0)
                .then(|| crypto::seal(&grace_key(presented), &next_hash, next.as_bytes()));
            if !store::sessions::consume(&mut tx, &hash, &next_hash, sealed.as_deref(), now).await?
            {
                // Unreachable with one serialised writer; refuse rather than branch.
                return Err(INVALID);
            }
            store::sessions::insert_token(&mut tx, &next_hash, &family.id, &family.scope, now)
                .await?;
            next
        }
        (Some(consumed_at), Some(next_hash), Some(sealed))
            if now - consumed_at <= grace
                && store::sessions::is_unconsumed(&mut tx, &next_hash).await? =>
        {
            let next = crypto::open(&grace_key(presented), &next_hash, &sealed)
                .map_err(|e| OAuthError::Internal(Box::new(e)))?;
            String::from_utf8(next).map_err(|e| OAuthError::Internal(Box::new(e)))?
        }
        _ => {
            revoke_family(&mut tx, &family, REASON_REUSE).await?;
            tx.commit().await?;
            core.events.wake();
            tracing::warn!(sid = %family.id, client_id, "refresh token reuse: family revoked");
            return Err(INVALID);
        }
    };
    store::sessions::touch_family(&mut tx, &family.id, now).await?;
    tx.commit().await?;
    Ok(Rotated {
        family,
        user,
        refresh_token: successor,
        granted,
    })
}

/// Revokes a family and records it in the event log, inside the caller's transaction.
pub async fn revoke_family(
    tx: &mut store::Tx,
    family: &FamilyRow,
    reason: &str,
) -> Result<bool, StoreError> {
    let now = store::now();
    if !store::sessions::revoke_family(tx, &family.id, reason, now).await? {
        return Ok(false);
    }
    let event = NewEvent {
        kind: "session.revoked",
        sub: Some(&family.user_id),
        sid: Some(&family.id),
        reason: Some(reason),
        ..Default::default()
    };
    store::events::append(tx, &event, now).await?;
    Ok(true)
}
