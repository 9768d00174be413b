//! Brute-force throttling of sign-ins and client authentication, with bounded
//! memory (OWASP Authentication Cheat Sheet; docs/operations.md "Throttling and
//! lockouts" argues the choices).
//!
//! - A username past `login_max_failures` failures is not locked: its next
//!   attempts are allowed one at a time after a delay that doubles with every
//!   failure, up to `login_max_delay`.
//! - A browser that signed in as that user before presents a device cookie
//!   ([`device`]): its attempts count on its own counter, not the username's, so
//!   an attacker hammering the username does not lock its owner out.
//! - Failures per source address (an IPv6 address by its /64) are limited too.
//! - Attempts in flight are not failures: beyond the limit they wait (at most
//!   `login_wait`) for one to settle. An attempt whose password was never
//!   evaluated (its request ended first) is given back.
//! - One address holds at most `argon2_address_share` sign-ins at once, so it
//!   cannot take the whole argon2 queue.

mod device;
mod limiter;

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use device::DEVICE_TTL_SECS;
pub use limiter::{Delay, ENTRY_BYTES, Limiter, Refused, Ticket};

use super::clock::Clock;
use super::signin::SignIn;
use crate::config::Config;
use crate::error::OAuthError;

/// Which limit refused a request: what its 429 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The username is past its failure limit: its next attempt is delayed.
    Username,
    /// The source address is past its failure limit for sign-ins.
    Address,
    /// The client, from this address, or the address itself, is past its
    /// limit of failed client authentications.
    Client,
    /// Attempts in flight (for this username, or from this address) filled the
    /// limit for longer than a request may wait.
    InProgress,
}

/// A request refused by a throttle: 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until an attempt can be allowed again.
    pub retry_after: u64,
    /// The limit that refused it.
    pub why: Why,
}

impl Throttled {
    fn new(r: Refused, why: Why) -> Self {
        Self {
            retry_after: r.retry_after,
            why: if r.failures { why } else { Why::InProgress },
        }
    }

    /// What the 429 means, for `error_description` and the login page.
    pub fn description(self) -> &'static str {
        match self.why {
            Why::Username => {
                "too many failed sign-ins for this username: its next attempt is allowed after Retry-After seconds"
            }
            Why::Address => {
                "too many failed sign-ins from this address: retry after Retry-After seconds"
            }
            Why::Client => {
                "too many failed client authentications from this address: retry after Retry-After seconds"
            }
            Why::InProgress => {
                "too many sign-ins in progress for this username or from this address: retry after Retry-After seconds"
            }
        }
    }
}

/// The limiters of `/token`, `/revoke`, `/introspect` and `/login`.
pub struct Throttle {
    /// Failed sign-ins per username, from untrusted devices (progressive delay).
    pub usernames: Limiter,
    /// Failed sign-ins per device cookie.
    pub devices: Limiter,
    /// Failed sign-ins per source address.
    pub addresses: Limiter,
    /// Failed client authentications per registered client and source address.
    pub clients: Limiter,
    /// Failed client authentications per source address, whatever the client id.
    pub client_addresses: Limiter,
    /// Sign-ins in flight per source address (never fail: a share of the argon2 queue).
    pub hashing: Limiter,
    /// How long an attempt may wait for a slot.
    wait: Duration,
    /// Signs device cookies (derived from the KEK).
    device_key: [u8; 32],
}

/// Table sizes: at [`ENTRY_BYTES`] each, at most ~8 MiB for each 100,000-key table,
/// ~0.8 MiB for 10,000 keys. `hashing` holds only attempts in flight.
pub const USERNAMES: usize = 100_000;
/// See [`USERNAMES`].
pub const ADDRESSES: usize = 100_000;
/// See [`USERNAMES`]: one entry per device cookie that failed or is signing in.
pub const DEVICES: usize = 100_000;
/// See [`USERNAMES`]: entries only for registered clients.
pub const CLIENTS: usize = 10_000;
/// The delay after a username's `login_max_failures`-th failure; it doubles after each
/// further failure, up to `login_max_delay`.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);

impl Throttle {
    /// The limiters as configured; `device_key` signs device cookies.
    pub fn new(cfg: &Config, device_key: [u8; 32]) -> Self {
        let (max, window) = (cfg.login_max_failures, cfg.login_window);
        // One address may host many users (NAT): allow it more failures.
        let per_address = max.saturating_mul(5);
        let delay = Delay {
            first: FIRST_DELAY,
            cap: cfg.login_max_delay,
        };
        Self {
            usernames: Limiter::new(max, window, USERNAMES, Some(delay)),
            devices: Limiter::new(max, window, DEVICES, None),
            addresses: Limiter::new(per_address, window, ADDRESSES, None),
            clients: Limiter::new(max, window, CLIENTS, None),
            client_addresses: Limiter::new(per_address, window, ADDRESSES, None),
            hashing: Limiter::new(cfg.argon2_address_share, window, ADDRESSES, None),
            // Answered within the request's time, whatever was configured.
            wait: cfg.login_wait.min(cfg.request_timeout / 2),
            device_key,
        }
    }
}

impl Throttle {
    fn limiters(&self) -> [&Limiter; 6] {
        [
            &self.usernames,
            &self.devices,
            &self.addresses,
            &self.clients,
            &self.client_addresses,
            &self.hashing,
        ]
    }

    /// Attempts waiting for a slot now, in every table (a gauge).
    pub fn waiting(&self) -> usize {
        self.limiters().iter().map(|l| l.waiting()).sum()
    }

    /// Keys tracked now, in every table (a gauge).
    pub fn keys(&self) -> usize {
        self.limiters().iter().map(|l| l.len()).sum()
    }
}

/// The part of an address one party holds: an IPv4 address (also when IPv4-mapped),
/// or an IPv6 address's /64 (one subscriber usually holds a whole /64, so counting
/// single addresses would give it 2^64 shares). Throttles and connection caps count by it.
pub fn address_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !(u128::from(u64::MAX))).into()),
        },
    }
}

/// The key an address is counted by: its [`address_prefix`], written out.
pub fn address_key(ip: IpAddr) -> String {
    match address_prefix(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

/// A sign-in attempt reserved before its password is evaluated. Dropped
/// unsettled (its request ended before an answer), every reservation is given
/// back: an answer never sent tells a guesser nothing.
#[must_use = "a sign-in attempt ends with settle_login"]
struct LoginAttempt {
    /// The address's share of the argon2 queue, held until settled.
    _hashing: Ticket,
    /// The address's failures; `None` from a trusted device.
    address: Option<Ticket>,
    /// The username's failures, or the trusted device's.
    account: Ticket,
    /// The normalised username (the throttle's key, and the event's lookup).
    name: String,
}

/// A client authentication reserved before the secret is checked.
#[must_use = "a client authentication ends with failed, or is given back when dropped"]
pub struct ClientAttempt {
    address: Ticket,
    /// `None` for a client id that is not registered: it takes no entry of its own.
    client: Option<Ticket>,
}

impl ClientAttempt {
    /// The secret (or the client id) was wrong: the attempt counts.
    pub fn failed(self, now: std::time::Instant) {
        self.address.failed(now);
        if let Some(t) = self.client {
            t.failed(now);
        }
    }
}

impl Throttle {
    /// The login throttle's sequence, in one call: reserves an attempt for `username` from
    /// `peer` before `check` (the password) runs, so racing requests cannot exceed the
    /// limit, waiting at most `login_wait` for a slot; then settles it by `check`'s outcome.
    /// `device` is the browser's device cookie, if any. Dropped before `check` answers (its
    /// request ended), the attempt is given back.
    pub async fn login<T>(
        &self,
        clock: &Clock,
        username: &str,
        peer: IpAddr,
        device: Option<&str>,
        check: impl Future<Output = Result<T, OAuthError>>,
    ) -> Result<Settled<T>, Throttled> {
        let attempt = self.login_attempt(clock, username, peer, device).await?;
        let result = check.await;
        let limited = settle_login(attempt, &result, clock.instant());
        Ok(Settled { result, limited })
    }

    async fn login_attempt(
        &self,
        clock: &Clock,
        username: &str,
        peer: IpAddr,
        device: Option<&str>,
    ) -> Result<LoginAttempt, Throttled> {
        let address = address_key(peer);
        let name = crate::store::users::username_key(username);
        let hashing = self
            .hashing
            .reserve(&address, clock, self.wait)
            .await
            .map_err(|r| Throttled::new(r, Why::InProgress))?;
        if let Some(id) = device.and_then(|d| self.trusted_device(d, &name, clock.now())) {
            // A device past its own limit is treated as untrusted (OWASP).
            if let Ok(account) = self.devices.reserve(id, clock, self.wait).await {
                return Ok(LoginAttempt {
                    _hashing: hashing,
                    address: None,
                    account,
                    name,
                });
            }
        }
        let address = self
            .addresses
            .reserve(&address, clock, self.wait)
            .await
            .map_err(|r| Throttled::new(r, Why::Address))?;
        let account = self
            .usernames
            .reserve(&name, clock, self.wait)
            .await
            .map_err(|r| Throttled::new(r, Why::Username))?;
        Ok(LoginAttempt {
            _hashing: hashing,
            address: Some(address),
            account,
            name,
        })
    }

    /// Reserves a client authentication for `client_id` from `peer`. An unknown
    /// client id counts against the address only.
    pub async fn client_attempt(
        &self,
        clock: &Clock,
        client_id: &str,
        registered: bool,
        peer: IpAddr,
    ) -> Result<ClientAttempt, Throttled> {
        let address = address_key(peer);
        let refused = |r| Throttled::new(r, Why::Client);
        let address_ticket = self
            .client_addresses
            .reserve(&address, clock, self.wait)
            .await
            .map_err(refused)?;
        let client = if registered {
            let key = format!("{client_id}|{address}");
            Some(
                self.clients
                    .reserve(&key, clock, self.wait)
                    .await
                    .map_err(refused)?,
            )
        } else {
            None
        };
        Ok(ClientAttempt {
            address: address_ticket,
            client,
        })
    }
}

/// A sign-in attempt settled by its password check.
pub struct Settled<T> {
    /// What the check answered.
    pub result: Result<T, OAuthError>,
    /// The username (normalised) when this failure reached its limit: its attempts are
    /// delayed from now on.
    pub limited: Option<String>,
}

/// Settles a sign-in attempt by the outcome of the password check: a right password
/// forgets the username's (or device's) failures, a wrong one counts against it and the
/// address, anything else (never evaluated) is given back.
fn settle_login<T>(
    attempt: LoginAttempt,
    result: &Result<T, OAuthError>,
    now: Instant,
) -> Option<String> {
    match result {
        // A right password for a user that changed meanwhile is no guess.
        Ok(_) | Err(OAuthError::AccountChanged) => attempt.account.succeeded(),
        Err(OAuthError::InvalidGrant(_)) => {
            if let Some(address) = attempt.address {
                address.failed(now);
                if attempt.account.failed(now) {
                    return Some(attempt.name);
                }
            } else {
                attempt.account.failed(now);
            }
        }
        Err(_) => {}
    }
    None
}

impl SignIn {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layers;

    /// A throttle that refuses at once (no wait) after `max` failures.
    fn throttle(max: &str) -> Throttle {
        let mut layers = Layers::default();
        layers.apply_env(|k| match k {
            "TESSERA_LOGIN_MAX_FAILURES" => Some(max.into()),
            "TESSERA_LOGIN_WAIT" => Some("0".into()),
            _ => None,
        });
        Throttle::new(&layers.build().expect("config"), [7; 32])
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const WRONG: OAuthError = OAuthError::InvalidGrant("invalid username or password");

    #[tokio::test]
    async fn a_sign_in_is_reserved_checked_then_settled() {
        let (t, clock) = (throttle("2"), Clock::default());
        let login =
            |result: Result<(), OAuthError>| t.login(&clock, "Alice", PEER, None, async { result });
        let first = login(Err(WRONG)).await.expect("allowed");
        assert!(matches!(first.result, Err(OAuthError::InvalidGrant(_))));
        assert_eq!(first.limited, None, "one failure of two");
        // A right password forgets the username's failures: two more are allowed.
        assert!(login(Ok(())).await.expect("allowed").result.is_ok());
        assert_eq!(login(Err(WRONG)).await.expect("allowed").limited, None);
        let last = login(Err(WRONG)).await.expect("allowed");
        assert_eq!(
            last.limited.as_deref(),
            Some("alice"),
            "the limit, by the normalised name"
        );
        // Past the limit the password is not checked at all.
        let mut checked = false;
        let refused = t
            .login(&clock, "alice", PEER, None, async {
                checked = true;
                Ok(())
            })
            .await
            .err()
            .expect("throttled");
        assert_eq!(refused.why, Why::Username);
        assert!(!checked, "refused before the password is evaluated");
    }

    #[tokio::test]
    async fn an_account_changed_or_unevaluated_sign_in_is_no_failure() {
        let (t, clock) = (throttle("1"), Clock::default());
        let changed = t
            .login(&clock, "bob", PEER, None, async {
                Err::<(), _>(OAuthError::AccountChanged)
            })
            .await
            .expect("allowed");
        assert_eq!(changed.limited, None);
        let busy = OAuthError::Busy { retry_after: 1 };
        let unevaluated = t.login(&clock, "bob", PEER, None, async { Err::<(), _>(busy) });
        assert_eq!(unevaluated.await.expect("allowed").limited, None);
        // Still a first failure (the limit is one): neither of the above counted.
        let wrong = t.login(&clock, "bob", PEER, None, async { Err::<(), _>(WRONG) });
        assert_eq!(
            wrong.await.expect("allowed").limited.as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn ipv6_addresses_are_counted_by_their_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    }
}
