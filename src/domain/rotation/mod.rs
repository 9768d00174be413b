//! Refresh-token rotation: what happens when a refresh token is used, reused, or
//! retried within the grace window. The rule is [`classify`]; [`SignIn::rotate`] carries it out.
//!
//! A refresh token names its family: 16 random bytes shared by every token of the family
//! (the handle) and 32 that change at every rotation, base64url together ([`Presented`]).
//! The family's row holds the SHA-256 of the live token (the head) and of the one it
//! replaced, and nothing else about tokens (`migrations/*/0015_named_refresh_tokens.sql`).
//!
//! - first use: one conditional `UPDATE refresh_families ... WHERE head_hash = <this
//!   token>` moves the head to the successor (group-committed with other first uses, see
//!   [`group_commit`]). Exactly one concurrent caller can win it. The successor is
//!   derived from the presented token under a key derived from the KEK, so a retry can
//!   be given it again without the database holding it;
//! - a retry within the grace window while the successor is still the family's
//!   live head: the same successor again (idempotent; the family never branches);
//! - any other reuse: the whole family is revoked (RFC 9700 §4.14.2), its sealed
//!   successors are dropped (`store::sessions::revoke_family`) and a
//!   `session.revoked` event is written. A token with the family's handle that is neither
//!   the head nor its predecessor is an older one, or one made up by someone who held a
//!   token of the family: reuse either way.
//!
//! Tokens of families started before migration 0015 (43 characters, no handle) are
//! found in `refresh_tokens` and rotate as they always did, always on the locked path:
//! consuming one sets `consumed_at`, and the `refresh_token_rotated` trigger inserts its
//! (legacy) successor; a retry's successor is kept sealed under a key derived from the
//! presented token.

pub mod group_commit;

use std::time::Duration;

use crate::crypto::{self, b64, sha256};
use crate::error::OAuthError;
use crate::store::sessions::{FamilyRow, TokenKey, TokenRow, UserState};
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
    /// Not consumed, or its successor cannot be given again: an older token of a named
    /// family, or a legacy token without a sealed copy (no grace window, or forgotten).
    None,
    /// The successor can be given again (derived for a named token, a sealed copy for a
    /// legacy one); `live_head`: the successor itself is still unconsumed.
    Retrievable {
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
    // Never negative: a clock stepped backwards must not widen the window. Without a
    // window (grace 0) every reuse is reuse, even within the same second.
    let in_window = policy.grace > 0 && (0..=policy.grace).contains(&(now - consumed_at));
    match token.successor {
        Successor::Retrievable { live_head: true } if in_window => Decision::GraceRetry,
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
/// successor is still unconsumed. It matters only when the successor can be given again:
/// a legacy token's sealed copy, or a named token's (derived from the presented token).
fn state_of(row: &TokenRow, live_head: bool) -> TokenState<'_> {
    TokenState {
        family_client: &row.family.client_id,
        family_revoked: row.family.revoked_at.is_some(),
        family_expires_at: row.family.expires_at,
        family_last_used_at: row.family.last_used_at,
        user_disabled: row.user.disabled,
        consumed_at: row.consumed_at,
        successor: match (&row.successor_hash, &row.successor_sealed) {
            (Some(_), Some(_)) => Successor::Retrievable { live_head },
            (Some(_), None) if row.named => Successor::Retrievable { live_head },
            _ => Successor::None,
        },
    }
}

/// A presented refresh token, parsed: how to find it, and the handle its successor
/// carries on (named tokens only).
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The token as presented.
    pub text: &'a str,
    /// How the store finds it.
    pub key: TokenKey,
    /// The family's handle and its SHA-256 (named tokens only).
    handle: Option<([u8; HANDLE_LEN], [u8; 32])>,
}

/// Bytes of a named token: the family's handle, then the token's own part.
const HANDLE_LEN: usize = 16;
const SECRET_LEN: usize = 32;
/// Characters of a named token (base64url of 48 bytes); a legacy token has 43.
const NAMED_LEN: usize = (HANDLE_LEN + SECRET_LEN) * 4 / 3;

impl<'a> Presented<'a> {
    /// Parses a presented token; anything that is not a named token is looked up as a
    /// legacy one (and, if made up, simply not found).
    pub fn parse(text: &'a str) -> Self {
        use base64::Engine;
        let hash = sha256(text.as_bytes());
        let raw = (text.len() == NAMED_LEN)
            .then(|| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
            })
            .flatten();
        match raw.as_deref().and_then(|r| r.get(..HANDLE_LEN)) {
            Some(handle) => {
                let handle: [u8; HANDLE_LEN] = handle.try_into().expect("16 bytes");
                let handle_hash = sha256(&handle);
                Self {
                    text,
                    key: TokenKey::Named {
                        handle: handle_hash,
                        hash,
                    },
                    handle: Some((handle, handle_hash)),
                }
            }
            None => Self {
                text,
                key: TokenKey::Legacy(hash),
                handle: None,
            },
        }
    }

    /// The token's SHA-256, whatever its kind.
    fn hash(&self) -> [u8; 32] {
        match self.key {
            TokenKey::Legacy(hash) | TokenKey::Named { hash, .. } => hash,
        }
    }
}

/// The first token of a new family: a fresh handle and a fresh secret. Returns the token
/// and the SHA-256 of its handle and of itself (what the family's row keeps).
pub fn first_token() -> (String, [u8; 32], [u8; 32]) {
    let handle = crypto::random::<HANDLE_LEN>();
    let token = named(&handle, &crypto::random::<SECRET_LEN>());
    let hash = sha256(token.as_bytes());
    (token, sha256(&handle), hash)
}

fn named(handle: &[u8; HANDLE_LEN], secret: &[u8; SECRET_LEN]) -> String {
    let mut raw = [0u8; HANDLE_LEN + SECRET_LEN];
    raw[..HANDLE_LEN].copy_from_slice(handle);
    raw[HANDLE_LEN..].copy_from_slice(secret);
    b64(&raw)
}

impl SignIn {
    /// The successor of a named token: the family's handle and an HMAC of the
    /// presented token under a key derived from the KEK. The same token always has the
    /// same successor, so a retry within the grace window gets it again without the
    /// database holding it; without the KEK nobody can compute it.
    fn successor_of(&self, handle: &[u8; HANDLE_LEN], presented: &str) -> (String, [u8; 32]) {
        let secret = self
            .keys
            .derive_key(&format!("tessera.refresh.successor.v1:{presented}"));
        let next = named(handle, &secret);
        let hash = sha256(next.as_bytes());
        (next, hash)
    }

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
        let presented = Presented::parse(presented);
        let now = self.clock.now();
        // Fast path (named tokens): read on the reader pool, then one (group-committed)
        // statement on the writer.
        if let Some((raw_handle, handle)) = presented.handle {
            let Some(row) = store::sessions::token(&self.db.read, &presented.key).await? else {
                return Err(INVALID);
            };
            if row.consumed_at.is_none() {
                if classify(&state_of(&row, false), now, &policy) == Decision::Invalid {
                    return Err(INVALID);
                }
                let granted = check(&row.family)?;
                let (next, next_hash) = self.successor_of(&raw_handle, presented.text);
                if self
                    .group_commit
                    .advance((handle, presented.hash(), next_hash, now))
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
        }
        store::retry_conflicts(|| self.rotate_locked(&policy, &presented, now, &check)).await
    }

    /// The slow path, in one write transaction: retries, reuse, lost races, and every
    /// legacy token.
    async fn rotate_locked<T>(
        &self,
        policy: &Policy<'_>,
        presented: &Presented<'_>,
        now: i64,
        check: impl Fn(&FamilyRow) -> Result<T, OAuthError>,
    ) -> Result<Rotated<T>, OAuthError> {
        let mut tx = self.db.begin().await?;
        let Some(row) = store::sessions::token_for_update(&mut tx, &presented.key).await? else {
            return Err(INVALID);
        };
        let live_head = match (&row.consumed_at, &row.successor_hash, &row.successor_sealed) {
            // A named token's successor is the family's head.
            (Some(_), Some(_), _) if row.named => true,
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
        let hash = presented.hash();
        let (next, granted) = match (decision, presented.handle) {
            (Decision::Invalid, _) => return Err(INVALID),
            (Decision::FirstUse, Some((handle, handle_hash))) => {
                let granted = check(&family)?;
                let (next, next_hash) = self.successor_of(&handle, presented.text);
                let won = store::sessions::advance(&mut tx, &[(handle_hash, hash, next_hash, now)])
                    .await?;
                if won.is_empty() {
                    // Unreachable under the write lock; refuse rather than branch.
                    return Err(INVALID);
                }
                (next, granted)
            }
            (Decision::FirstUse, None) => {
                let granted = check(&family)?;
                let grace = Duration::from_secs(policy.grace as u64);
                let (next, next_hash, sealed) = legacy_successor(grace, presented.text);
                if !store::sessions::consume(&mut tx, &hash, &next_hash, sealed.as_deref(), now)
                    .await?
                {
                    // Unreachable under the write lock; refuse rather than branch.
                    return Err(INVALID);
                }
                (next, granted)
            }
            (Decision::GraceRetry, handle) => {
                let Some(next_hash) = successor_hash else {
                    return Err(INVALID);
                };
                let granted = check(&family)?;
                let next = match (handle, successor_sealed) {
                    (Some((handle, _)), _) => {
                        let (next, derived) = self.successor_of(&handle, presented.text);
                        // Derived under another KEK (rotated since): it cannot be given
                        // again. Refused, but not taken for reuse.
                        if !crypto::ct_eq(&derived, &next_hash) {
                            return Err(INVALID);
                        }
                        next
                    }
                    (None, Some(sealed)) => {
                        let next = crypto::open(&grace_key(presented.text), &next_hash, &sealed)
                            .map_err(|e| OAuthError::Internal(Box::new(e)))?;
                        String::from_utf8(next).map_err(|e| OAuthError::Internal(Box::new(e)))?
                    }
                    (None, None) => return Err(INVALID),
                };
                store::sessions::touch_family(&mut tx, &family.id, now).await?;
                // Whoever replays a just-used token in the window gets the live
                // successor: a public client's thief as well as a retrying tab.
                self.metrics.refresh_grace_replay();
                let age_s = now - consumed_at.unwrap_or(now);
                tracing::warn!(sid = %family.id, client_id, age_s, "refresh token replayed within the grace window: successor handed out again");
                (next, granted)
            }
            (Decision::Reuse, _) => {
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

/// A legacy token's successor (a fresh legacy token), its hash, and (with a grace
/// window) its sealed copy.
fn legacy_successor(grace: Duration, presented: &str) -> (String, [u8; 32], Option<Vec<u8>>) {
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

    const LIVE: Successor = Successor::Retrievable { live_head: true };

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
        let used = Successor::Retrievable { live_head: false };
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
    fn without_a_window_a_retry_in_the_same_second_is_reuse() {
        let strict = Policy { grace: 0, ..POLICY };
        assert_eq!(
            classify(&token(Some(505), LIVE), 505, &strict),
            Decision::Reuse
        );
    }

    #[test]
    fn a_named_token_is_found_by_its_handle_and_a_legacy_one_by_its_hash() {
        let (first, handle, hash) = first_token();
        assert_eq!(first.len(), NAMED_LEN);
        assert_eq!(
            Presented::parse(&first).key,
            TokenKey::Named { handle, hash }
        );
        let legacy = crypto::random_token();
        assert_eq!(
            Presented::parse(&legacy).key,
            TokenKey::Legacy(sha256(legacy.as_bytes()))
        );
        // 64 characters that are not base64url: looked up as legacy, never found.
        let odd = "!".repeat(NAMED_LEN);
        assert_eq!(
            Presented::parse(&odd).key,
            TokenKey::Legacy(sha256(odd.as_bytes()))
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
