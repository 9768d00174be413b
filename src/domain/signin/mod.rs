//! Sign-in: what `/token`, `/revoke`, `/introspect`, `/userinfo` and the `/authorize`
//! pages need, in one service. The grants (grants.rs, codes.rs), refresh rotation
//! (rotation/), sessions, introspection and the login throttle are its methods; the rules
//! that decide what a browser sign-in asks of the user (`max_age`, `prompt`, consent) are
//! in [`rules`].

pub mod rules;

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use super::browser::Browser;
use super::clients::{Client, Clients};
use super::clock::Clock;
use super::events::EventBus;
use super::factors::Factors;
use super::keys::{self, KeyRing};
use super::liveness::Live;
use super::passwords::Passwords;
use super::pause::Pauses;
use super::rotation::GroupCommit;
use super::throttle::{ClientAttempt, Throttle, Throttled, address_key};
use super::tokens::Tokens;
use super::users::Users;
use crate::config::Config;
use crate::error::OAuthError;
use crate::metrics::Metrics;
use crate::store::{Db, StoreError};
use rules::{Consent, Prompt};

/// Sign-in: a handle on its [`Parts`], built once by `Core::open`. A clone (a handler's
/// `State<SignIn>`) costs one reference count, whatever it holds.
#[derive(Clone)]
pub struct SignIn(Arc<Parts>);

impl SignIn {
    /// The service over these parts.
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

/// Its methods read the parts as fields (`self.db`).
impl Deref for SignIn {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// Everything sign-in uses, shared. The fields are named as `Core`'s were, so the bodies
/// that moved here read as before.
pub struct Parts {
    /// The validated settings.
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The one clock.
    pub clock: Arc<Clock>,
    /// The signing keys in memory (verifying tokens, ID tokens' key set).
    pub keys: Arc<KeyRing>,
    /// The signing keys' life: starts the RS256 chain for a client's ID tokens.
    pub signing: keys::Keys,
    /// Registered clients, the server's cache.
    pub clients: Clients,
    /// Users (the signed-in user as it is now).
    pub users: Users,
    /// The argon2 workers; every password goes through them.
    pub passwords: Passwords,
    /// Failure limits on sign-ins and client authentication.
    pub throttle: Throttle,
    /// Mints access and ID tokens (and verifies them at `/userinfo`).
    pub tokens: Tokens,
    /// Browser sessions and remembered consent.
    pub browser: Browser,
    /// Whether a token is still live (introspection, `/userinfo`).
    pub live: Live,
    /// Woken after a revocation commits.
    pub events: Arc<EventBus>,
    /// The process's counters.
    pub metrics: Arc<Metrics>,
    /// Test-only pause points (inert unless a test arms one).
    pub pauses: Pauses,
    /// First uses of refresh tokens, consumed in batches.
    pub group_commit: GroupCommit,
    /// Second factors: the second step of a sign-in, the account page.
    pub factors: Factors,
}

impl SignIn {
    /// Whether the signed-in user is asked to consent to `client` for `scope` (see
    /// [`rules::consent`]); remembered consent is read only for a third-party client.
    pub async fn consent(
        &self,
        client: &Client,
        user_id: &str,
        scope: &str,
        prompt: Prompt,
    ) -> Result<Consent, StoreError> {
        let remembered = if client.third_party {
            self.browser.has_consent(user_id, &client.id, scope).await?
        } else {
            false
        };
        Ok(rules::consent(client.third_party, remembered, prompt))
    }

    /// [`Throttle::login`], and the `user.login_throttled` event when the username reaches
    /// its failure limit: the one call `/token`'s password grant and `/login` make.
    pub async fn throttled_login<T>(
        &self,
        username: &str,
        peer: IpAddr,
        device: Option<&str>,
        check: impl Future<Output = Result<T, OAuthError>>,
    ) -> Result<Result<T, OAuthError>, Throttled> {
        let settled = self
            .throttle
            .login(&self.clock, username, peer, device, check)
            .await?;
        if let Some(name) = settled.limited {
            self.login_throttled(&name, peer).await;
        }
        Ok(settled.result)
    }

    /// Reserves a client authentication ([`Throttle::client_attempt`]).
    pub async fn client_attempt(
        &self,
        client_id: &str,
        registered: bool,
        peer: IpAddr,
    ) -> Result<ClientAttempt, Throttled> {
        self.throttle
            .client_attempt(&self.clock, client_id, registered, peer)
            .await
    }

    /// A new device cookie naming `username`, for a browser that just signed in.
    pub fn device_cookie(&self, username: &str) -> String {
        let name = crate::store::users::username_key(username);
        self.throttle.new_device(&name, self.clock.now())
    }

    /// The username reached its failure limit: its attempts are delayed from now
    /// on; writes a `user.login_throttled` event (for a known user).
    async fn login_throttled(&self, name: &str, peer: IpAddr) {
        tracing::warn!(
            address = %address_key(peer),
            "too many failed sign-ins for one username; its attempts are delayed"
        );
        let written = async {
            let Some(user) = crate::store::users::by_username(&self.db.read, name).await? else {
                return Ok(());
            };
            let mut tx = self.db.begin().await?;
            let event = crate::store::events::NewEvent {
                kind: super::events::EventKind::LoginThrottled.as_str(),
                sub: Some(&user.id),
                reason: Some("too_many_failures"),
                ..Default::default()
            };
            crate::store::events::append(&mut tx, &event, self.clock.now()).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            self.events.wake();
            Ok::<_, crate::store::StoreError>(())
        };
        if let Err(e) = written.await {
            tracing::error!(error = %e, "writing user.login_throttled");
        }
    }
}
