//! The browser session at tessera (single sign-on across apps) and remembered
//! consent for third-party clients. The cookie holds a random token; the
//! database only its SHA-256.

use std::sync::Arc;
use std::time::Duration;

use super::audit::Actor;
use super::clock::Clock;
use super::users::Users;
use crate::config::Config;
use crate::crypto::{self, sha256};
use crate::store::{self, Db, StoreError};

/// A signed-in browser: who, and when they typed their password.
#[derive(Debug, PartialEq, Eq)]
pub struct BrowserSession {
    /// Who signed in.
    pub user_id: String,
    /// When they signed in (Unix seconds), for the ID token's `auth_time` and `max_age`.
    pub auth_time: i64,
}

/// Browser sessions and remembered consent: what `/authorize`'s sign-in and logout
/// keep at tessera. Built once by `Core::open`; cheap to clone (shared parts).
#[derive(Clone)]
pub struct Browser {
    /// The settings (the browser session's lifetime).
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The server's clock.
    pub clock: Arc<Clock>,
}

impl Browser {
    /// Starts a browser session for a user who just signed in; returns the cookie value.
    /// The session the browser held before (`previous`, its cookie) ends in the same
    /// transaction, whoever it was for: a browser has one session, another user's
    /// sign-in must not leave the first one's cookie able to obtain codes, and the
    /// same user signing in again gets a fresh cookie and `auth_time`.
    pub async fn start_browser_session(
        &self,
        user_id: &str,
        previous: Option<&str>,
    ) -> Result<String, StoreError> {
        let token = crypto::random_token();
        let now = self.clock.now();
        let expires = session_expires_at(now, self.cfg.browser_session_ttl);
        let mut tx = self.db.begin_plain().await?;
        if let Some(previous) = previous {
            store::browser::revoke_session(&mut tx, &sha256(previous.as_bytes()), now).await?;
        }
        store::browser::insert_session(&mut tx, &sha256(token.as_bytes()), user_id, now, expires)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The live session a cookie names, if any (ended, expired or of a disabled user: none).
    pub async fn browser_session(&self, token: &str) -> Result<Option<BrowserSession>, StoreError> {
        let hash = sha256(token.as_bytes());
        let found = store::browser::live_session(&self.db.read, &hash, self.clock.now()).await?;
        Ok(found.map(|(user_id, auth_time)| BrowserSession { user_id, auth_time }))
    }

    /// Ends the session a cookie names (RP-initiated logout).
    pub async fn end_browser_session(&self, token: &str) -> Result<(), StoreError> {
        let hash = sha256(token.as_bytes());
        store::browser::revoke_session(self.db.writer(), &hash, self.clock.now()).await
    }

    /// Whether the user consented to this client for exactly this scope set.
    pub async fn has_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<bool, StoreError> {
        store::browser::has_consent(&self.db.read, user_id, client_id, &scope_key(scope)).await
    }

    /// Records that the user allowed this client these scopes, so the consent page is not shown
    /// again.
    pub async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<(), StoreError> {
        let key = scope_key(scope);
        let now = self.clock.now();
        store::browser::insert_consent(self.db.writer(), user_id, client_id, &key, now).await
    }
}

impl Users {
    /// Withdraws a user's consents to a client; returns how many there were.
    pub async fn revoke_consents(
        &self,
        by: &Actor,
        user_id: &str,
        client_id: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = store::browser::delete_consents(&mut tx, user_id, client_id).await?;
        if n > 0 {
            let details = serde_json::json!({ "client": client_id });
            by.record(
                &mut tx,
                "revoke_consents",
                Some(user_id),
                Some(details),
                self.clock.now(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// A scope set in one canonical form: sorted, space-joined.
fn scope_key(scope: &str) -> String {
    let mut list: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    list.sort_unstable();
    list.dedup();
    list.join(" ")
}

/// When a browser session started at `now` (Unix seconds) ends: it is live while the
/// clock is before it (the store compares, given the time).
fn session_expires_at(now: i64, ttl: Duration) -> i64 {
    now + ttl.as_secs() as i64
}

/// Ends a user's browser sessions inside the permission change's transaction, at `now`
/// (the change's time).
pub async fn end_user_sessions(
    tx: &mut store::Tx,
    user_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    store::browser::revoke_user_sessions(tx, user_id, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_session_ends_its_ttl_after_the_sign_in() {
        let day = Duration::from_secs(86_400);
        assert_eq!(session_expires_at(1_000_000, day), 1_086_400);
    }

    #[test]
    fn consent_is_remembered_for_a_scope_set_whatever_its_order() {
        assert_eq!(scope_key("profile  openid openid"), "openid profile");
        assert_eq!(scope_key("openid profile"), scope_key("profile openid"));
    }
}
