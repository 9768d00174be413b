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
mod login;

use std::net::IpAddr;
use std::time::Duration;

pub use device::DEVICE_TTL_SECS;
pub use limiter::{Delay, ENTRY_BYTES, Limiter, Refused, Ticket};
pub use login::Settled;

use super::clock::Clock;
use crate::config::Config;

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

#[cfg(test)]
mod tests {
    use super::*;
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
