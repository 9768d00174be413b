//! Refresh-token rotation: what happens when a refresh token is used, reused, or
//! retried within the grace window. The rule is [`classify`]; [`SignIn::rotate`] carries it out.
//!
//! - first use: one conditional `UPDATE ... WHERE consumed_at IS NULL` consumes the
//!   token (group-committed with other first uses, see [`group_commit`]). Exactly one
//!   concurrent caller can win it. The successor row is not inserted here: the
//!   `refresh_token_rotated` trigger (`migrations/sqlite/0001_init.sql`,
//!   `migrations/postgres/0001_init.sql`) inserts it and touches the family within
//!   the consuming statement;
//! - a retry within the grace window while the successor is still the family's
//!   live head: the same successor again (idempotent; the family never branches);
//! - any other reuse: the whole family is revoked (RFC 9700 §4.14.2), its sealed
//!   successors are dropped (`store::sessions::revoke_family`) and a
//!   `session.revoked` event is written.

pub mod group_commit;

use std::time::Duration;

use crate::crypto::{self, sha256};
use crate::error::OAuthError;
use crate::store::sessions::{FamilyRow, TokenRow, UserState};
use crate::store::{self};

use super::clients::Client;
use super::sessions::revoke_family;
use super::signin::SignIn;

pub use group_commit::GroupCommit;

/// Why a family revoked for reuse was revoked (the `reason` of its event).
pub const REASON_REUSE: &str = "refresh_token_reuse";

/// What presenting a refresh token amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Never used: consume it and issue its successor.
    FirstUse,
    /// Used moments ago and its successor is still unused: hand that successor out again.
    GraceRetry,
    /// Used before, outside the rules above: revoke the whole family.
    Reuse,
    /// Wrong client, revoked or expired family, disabled user: refuse, touch nothing.
    Invalid,
}

/// The successor a consumed token recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    /// Not consumed, or consumed without a sealed copy (no grace window, or forgotten).
    None,
    /// A sealed copy is kept; `live_head`: the successor itself is still unconsumed.
    Sealed {
        /// The successor is still unconsumed: handing it out again cannot branch the family.
        live_head: bool,
    },
}

/// What [`classify`] needs to know about a presented token: no I/O, no clock.
#[derive(Debug, Clone, Copy)]
pub struct TokenState<'a> {
    /// The client the family belongs to.
    pub family_client: &'a str,
    /// The family has been revoked (logout, reuse, admin, a user change).
    pub family_revoked: bool,
    /// The family's absolute end, Unix seconds.
    pub family_expires_at: i64,
    /// The family's last refresh, Unix seconds; the idle timeout counts from it.
    pub family_last_used_at: i64,
    /// The family's user is disabled now.
    pub user_disabled: bool,
    /// When this token was consumed, Unix seconds; `None` on its first use.
    pub consumed_at: Option<i64>,
    /// What its consumption recorded.
    pub successor: Successor,
}

/// The request's side: who presents the token and the lifetimes that apply.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The authenticated client presenting the token.
    pub client_id: &'a str,
    /// Seconds a family may go unused (`refresh_idle_ttl`).
    pub idle_ttl: i64,
    /// Seconds after a use in which a retry gets the same successor; 0: none.
    pub grace: i64,
}

/// The reuse rule, in one place. `now` and the token's times are unix seconds.
pub fn classify(token: &TokenState, now: i64, policy: &Policy) -> Decision {
    // A token presented by another client is refused without touching the family (RFC 6749 §10.4).
    if token.family_client != policy.client_id || token.family_revoked {
        return Decision::Invalid;
    }
    if now >= token.family_expires_at || now >= token.family_last_used_at + policy.idle_ttl {
        return Decision::Invalid;
    }
    if token.user_disabled {
        return Decision::Invalid;
    }
    let Some(consumed_at) = token.consumed_at else {
        return Decision::FirstUse;
    };
    // Never negative: a clock stepped backwards must not widen the window.
    let in_window = (0..=policy.grace).contains(&(now - consumed_at));
    match token.successor {
        Successor::Sealed { live_head: true } if in_window => Decision::GraceRetry,
        _ => Decision::Reuse,
    }
}

/// A rotation's outcome: the family and user as read, the successor, and what the
/// request's check granted.
pub struct Rotated<T> {
    /// The token's family, as read before the rotation.
    pub family: FamilyRow,
    /// The family's user as it is now, for the new access token.
    pub user: UserState,
    /// The successor to hand to the client (new, or the same again on a grace retry).
    pub refresh_token: String,
    /// What the request's `check` returned (the scope and audience granted).
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

/// The state [`classify`] reads, from a row; `live_head` is whether the recorded
/// successor is still unconsumed (only asked when a sealed copy exists).
fn state_of(row: &TokenRow, live_head: bool) -> TokenState<'_> {
    TokenState {
        family_client: &row.family.client_id,
        family_revoked: row.family.revoked_at.is_some(),
        family_expires_at: row.family.expires_at,
        family_last_used_at: row.family.last_used_at,
        user_disabled: row.user.disabled,
        consumed_at: row.consumed_at,
        successor: match (&row.successor_hash, &row.successor_sealed) {
            (Some(_), Some(_)) => Successor::Sealed { live_head },
            _ => Successor::None,
        },
    }
}

impl SignIn {
    /// Rotates `presented`: consumes it and returns its successor (see the module
    /// doc). `check` validates the request against the family before anything is
    /// consumed, for a first use or a retry only: reuse is reuse, whatever else the
    /// request says, so a stolen token cannot probe quietly.
    pub async fn rotate<T>(
        &self,
        client: &Client,
        presented: &str,
        check: impl Fn(&FamilyRow) -> Result<T, OAuthError>,
    ) -> Result<Rotated<T>, OAuthError> {
        let grace = client
            .refresh_reuse_grace
            .unwrap_or(self.cfg.refresh_reuse_grace);
        let policy = Policy {
            client_id: client.id.as_str(),
            idle_ttl: self.cfg.refresh_idle_ttl.as_secs() as i64,
            grace: grace.as_secs() as i64,
        };
        let hash = sha256(presented.as_bytes());
        let now = self.clock.now();
        // Fast path: read on the reader pool, then one (group-committed) statement on the writer.
        let Some(row) = store::sessions::token(&self.db.read, &hash).await? else {
            return Err(INVALID);
        };
        if row.consumed_at.is_none() {
            if classify(&state_of(&row, false), now, &policy) == Decision::Invalid {
                return Err(INVALID);
            }
            let granted = check(&row.family)?;
            let (next, next_hash, sealed) = successor(grace, presented);
            if self
                .group_commit
                .consume((hash, next_hash, sealed, now))
                .await
            {
                return Ok(Rotated {
                    family: row.family,
                    user: row.user,
                    refresh_token: next,
                    granted,
                });
            }
            // Lost a race, or the family was revoked meanwhile: decide under the write lock.
        }
        store::retry_conflicts(|| self.rotate_locked(&policy, presented, &hash, now, &check)).await
    }

    /// The slow path, in one write transaction: retries, reuse, and lost races.
    async fn rotate_locked<T>(
        &self,
        policy: &Policy<'_>,
        presented: &str,
        hash: &[u8; 32],
        now: i64,
        check: impl Fn(&FamilyRow) -> Result<T, OAuthError>,
    ) -> Result<Rotated<T>, OAuthError> {
        let mut tx = self.db.begin().await?;
        let Some(row) = store::sessions::token_for_update(&mut tx, hash).await? else {
            return Err(INVALID);
        };
        let live_head = match (&row.consumed_at, &row.successor_hash, &row.successor_sealed) {
            (Some(_), Some(next_hash), Some(_)) => {
                store::sessions::is_unconsumed(&mut tx, next_hash).await?
            }
            _ => false,
        };
        let decision = classify(&state_of(&row, live_head), now, policy);
        let client_id = policy.client_id;
        let TokenRow {
            consumed_at,
            successor_hash,
            successor_sealed,
            family,
            user,
            ..
        } = row;
        let (next, granted) = match decision {
            Decision::Invalid => return Err(INVALID),
            Decision::FirstUse => {
                let granted = check(&family)?;
                let grace = Duration::from_secs(policy.grace as u64);
                let (next, next_hash, sealed) = successor(grace, presented);
                if !store::sessions::consume(&mut tx, hash, &next_hash, sealed.as_deref(), now)
                    .await?
                {
                    // Unreachable under the write lock; refuse rather than branch.
                    return Err(INVALID);
                }
                (next, granted)
            }
            Decision::GraceRetry => {
                let (Some(next_hash), Some(sealed)) = (successor_hash, successor_sealed) else {
                    return Err(INVALID);
                };
                let granted = check(&family)?;
                let next = crypto::open(&grace_key(presented), &next_hash, &sealed)
                    .map_err(|e| OAuthError::Internal(Box::new(e)))?;
                store::sessions::touch_family(&mut tx, &family.id, now).await?;
                // Whoever replays a just-used token in the window gets the live
                // successor: a public client's thief as well as a retrying tab.
                self.metrics.refresh_grace_replay();
                let age_s = now - consumed_at.unwrap_or(now);
                tracing::warn!(sid = %family.id, client_id, age_s, "refresh token replayed within the grace window: successor handed out again");
                (
                    String::from_utf8(next).map_err(|e| OAuthError::Internal(Box::new(e)))?,
                    granted,
                )
            }
            Decision::Reuse => {
                revoke_family(&self.clock, &mut tx, &family, REASON_REUSE).await?;
                tx.commit().await?;
                self.events.wake();
                self.metrics.refresh_reuse();
                self.metrics.session_revoked(REASON_REUSE);
                tracing::warn!(sid = %family.id, client_id, "refresh token reuse: family revoked");
                return Err(INVALID);
            }
        };
        tx.commit().await?;
        Ok(Rotated {
            family,
            user,
            refresh_token: next,
            granted,
        })
    }
}

/// A fresh successor token, its hash, and (with a grace window) its sealed copy.
fn successor(grace: Duration, presented: &str) -> (String, [u8; 32], Option<Vec<u8>>) {
    let next = crypto::random_token();
    let next_hash = sha256(next.as_bytes());
    let sealed = (!grace.is_zero())
        .then(|| crypto::seal(&grace_key(presented), &next_hash, next.as_bytes()));
    (next, next_hash, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        client_id: "app",
        idle_ttl: 100,
        grace: 10,
    };

    fn token(consumed_at: Option<i64>, successor: Successor) -> TokenState<'static> {
        TokenState {
            family_client: "app",
            family_revoked: false,
            family_expires_at: 1_000,
            family_last_used_at: 500,
            user_disabled: false,
            consumed_at,
            successor,
        }
    }

    const LIVE: Successor = Successor::Sealed { live_head: true };

    #[test]
    fn an_unused_token_is_a_first_use() {
        assert_eq!(
            classify(&token(None, Successor::None), 510, &POLICY),
            Decision::FirstUse
        );
    }

    #[test]
    fn a_retry_within_the_window_gets_the_live_successor() {
        let t = token(Some(505), LIVE);
        assert_eq!(classify(&t, 505, &POLICY), Decision::GraceRetry);
        assert_eq!(
            classify(&t, 515, &POLICY),
            Decision::GraceRetry,
            "window is inclusive"
        );
    }

    #[test]
    fn a_retry_after_the_window_is_reuse() {
        assert_eq!(
            classify(&token(Some(505), LIVE), 516, &POLICY),
            Decision::Reuse
        );
    }

    #[test]
    fn a_clock_stepped_backwards_does_not_widen_the_window() {
        assert_eq!(
            classify(&token(Some(505), LIVE), 504, &POLICY),
            Decision::Reuse
        );
    }

    #[test]
    fn reuse_once_the_successor_was_used_or_without_a_sealed_copy() {
        let used = Successor::Sealed { live_head: false };
        assert_eq!(
            classify(&token(Some(505), used), 506, &POLICY),
            Decision::Reuse
        );
        let none = token(Some(505), Successor::None);
        assert_eq!(classify(&none, 506, &POLICY), Decision::Reuse);
        let no_grace = Policy { grace: 0, ..POLICY };
        assert_eq!(
            classify(&token(Some(505), LIVE), 506, &no_grace),
            Decision::Reuse
        );
    }

    #[test]
    fn another_client_a_dead_family_or_a_disabled_user_is_invalid_even_for_reuse() {
        let t = token(Some(505), Successor::None);
        let other = Policy {
            client_id: "other",
            ..POLICY
        };
        assert_eq!(classify(&t, 506, &other), Decision::Invalid);
        let revoked = TokenState {
            family_revoked: true,
            ..t
        };
        assert_eq!(classify(&revoked, 506, &POLICY), Decision::Invalid);
        let disabled = TokenState {
            user_disabled: true,
            ..t
        };
        assert_eq!(classify(&disabled, 506, &POLICY), Decision::Invalid);
    }

    #[test]
    fn the_absolute_and_idle_lifetimes_end_a_family() {
        let t = token(None, Successor::None);
        assert_eq!(classify(&t, 599, &POLICY), Decision::FirstUse);
        assert_eq!(classify(&t, 600, &POLICY), Decision::Invalid, "idle");
        let short = TokenState {
            family_expires_at: 520,
            ..t
        };
        assert_eq!(
            classify(&short, 520, &POLICY),
            Decision::Invalid,
            "absolute"
        );
    }
}
