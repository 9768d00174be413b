//! Attempt counters for brute-force throttling, with bounded memory.
//!
//! Hand-written, not a rate-limit crate (governor and kin): those meter requests,
//! while this reserves an evaluation before the credential check, refunds it on
//! success and refuses new keys when full instead of evicting a counter.
//!
//! Each key (a normalised username, a source address, a client id with an
//! address) counts attempts in a fixed window. An attempt is *reserved* before
//! the credential is evaluated, under the table's lock, and refunded when it
//! succeeds (or is never evaluated): so however many requests race, at most
//! `max` evaluations per key and window ever happen, and the rest get 429.
//!
//! Keys are stored as a 128-bit keyed hash of the identifier, never the
//! identifier itself, so an entry costs the same few dozen bytes whether the
//! username was 3 bytes or 16 KiB, and the table's memory is bounded by its
//! capacity. A table full of live counters refuses new keys (they are
//! throttled until the oldest entry's window ends) rather than evicting a
//! counter or forgetting to count: a flood of random names cannot buy an
//! attacker uncounted guesses at a real one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bounded-size key: the first 16 bytes of SHA-256(secret ‖ identifier).
type Key = [u8; 16];

/// Memory of one entry, key and value, with the hash map's own overhead
/// rounded up: what the README's figures per table are computed from.
pub const ENTRY_BYTES: usize = 64;

/// Failures per key in a sliding window, over a fixed-size table so an attacker cannot grow memory.
pub struct Limiter {
    max: u32,
    window: Duration,
    capacity: usize,
    /// Per-process secret for the key hash: colliding identifiers cannot be
    /// searched for offline.
    secret: [u8; 32],
    entries: Mutex<HashMap<Key, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Attempts reserved in this window, whether evaluated yet or not.
    attempts: u32,
    since: Instant,
}

/// An attempt reserved against a key: refund it, or keep it as a failure.
#[must_use = "an attempt is refunded on success or kept on failure"]
#[derive(Debug)]
pub struct Ticket {
    key: Key,
    since: Instant,
    /// This attempt is the last one the window allows.
    pub last: bool,
}

impl Limiter {
    /// At most `max` failures per key per `window`, over at most `capacity` keys.
    pub fn new(max: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max,
            window,
            capacity,
            secret: crate::crypto::random::<32>(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, id: &str) -> Key {
        let mut input = Vec::with_capacity(32 + id.len());
        input.extend_from_slice(&self.secret);
        input.extend_from_slice(id.as_bytes());
        let digest = crate::crypto::sha256(&input);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    fn retry_after(&self, since: Instant, now: Instant) -> u64 {
        self.window
            .saturating_sub(now.duration_since(since))
            .as_secs()
            .max(1)
    }

    /// Reserves one attempt for `id`, or `Err(seconds to wait)` when its window
    /// is used up (or the table is full of live counters and `id` is new).
    pub fn reserve(&self, id: &str, now: Instant) -> Result<Ticket, u64> {
        let key = self.key(id);
        let mut entries = self.entries.lock().expect("limiter lock");
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            let window = self.window;
            entries.retain(|_, e| now.duration_since(e.since) < window);
            if entries.len() >= self.capacity {
                let oldest = entries.values().map(|e| e.since).min().unwrap_or(now);
                return Err(self.retry_after(oldest, now));
            }
        }
        let e = entries.entry(key).or_insert(Entry {
            attempts: 0,
            since: now,
        });
        if now.duration_since(e.since) >= self.window {
            *e = Entry {
                attempts: 0,
                since: now,
            };
        }
        if e.attempts >= self.max {
            return Err(self.retry_after(e.since, now));
        }
        e.attempts += 1;
        Ok(Ticket {
            key,
            since: e.since,
            last: e.attempts == self.max,
        })
    }

    /// Gives back an attempt that succeeded or was never evaluated. A ticket of
    /// an earlier window refunds nothing (that window is gone already).
    pub fn refund(&self, ticket: Ticket) {
        let mut entries = self.entries.lock().expect("limiter lock");
        let Some(e) = entries.get_mut(&ticket.key) else {
            return;
        };
        if e.since == ticket.since {
            e.attempts = e.attempts.saturating_sub(1);
            if e.attempts == 0 {
                entries.remove(&ticket.key);
            }
        }
    }

    /// Forgets the key's counter altogether (a user who signed in).
    pub fn reset(&self, ticket: Ticket) {
        self.entries
            .lock()
            .expect("limiter lock")
            .remove(&ticket.key);
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("limiter lock").len()
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The three limiters of `/token`, `/revoke` and `/introspect`.
pub struct Throttle {
    /// Failed sign-ins per username (`login_max_failures` per `login_window`).
    pub usernames: Limiter,
    /// Failures per client address.
    pub addresses: Limiter,
    /// Failed client authentications per client id.
    pub clients: Limiter,
}

/// Table sizes: at [`ENTRY_BYTES`] each, at most ~6 MiB, ~6 MiB and ~0.6 MiB.
pub const USERNAMES: usize = 100_000;
/// See [`USERNAMES`].
pub const ADDRESSES: usize = 100_000;
/// See [`USERNAMES`].
pub const CLIENTS: usize = 10_000;

impl Throttle {
    /// The limiters for `max_failures` per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            usernames: Limiter::new(max_failures, window, USERNAMES),
            // One address may host many users (NAT): allow it more failures.
            addresses: Limiter::new(max_failures.saturating_mul(5), window, ADDRESSES),
            clients: Limiter::new(max_failures, window, CLIENTS),
        }
    }
}

/// A sign-in attempt reserved against its username and its address. Dropped
/// unresolved (its request was abandoned mid-way), it stays counted: an
/// attacker cannot get attempts back by hanging up.
#[must_use = "a sign-in attempt ends with succeeded, failed or not_evaluated"]
pub struct LoginAttempt {
    username: Ticket,
    address: Ticket,
    /// The normalised username (the throttle's key, and the event's lookup).
    name: String,
    peer: String,
}

impl super::Core {
    /// Reserves a sign-in attempt for `username` from `address`, before the
    /// password is evaluated; `Err(retry_after)` when either is throttled.
    pub fn login_attempt(&self, username: &str, address: &str) -> Result<LoginAttempt, u64> {
        let name = crate::store::users::username_key(username);
        let now = self.clock.instant();
        let address_ticket = self.throttle.addresses.reserve(address, now)?;
        let username_ticket = match self.throttle.usernames.reserve(&name, now) {
            Ok(t) => t,
            Err(retry_after) => {
                self.throttle.addresses.refund(address_ticket);
                return Err(retry_after);
            }
        };
        Ok(LoginAttempt {
            username: username_ticket,
            address: address_ticket,
            name,
            peer: address.to_string(),
        })
    }

    /// The password was right: the user's counter starts over, the address
    /// gets its attempt back.
    pub fn login_succeeded(&self, attempt: LoginAttempt) {
        self.throttle.usernames.reset(attempt.username);
        self.throttle.addresses.refund(attempt.address);
    }

    /// The attempt ended before the password was evaluated (a bad scope, a full
    /// queue, a database error): it costs nothing.
    pub fn login_not_evaluated(&self, attempt: LoginAttempt) {
        self.throttle.usernames.refund(attempt.username);
        self.throttle.addresses.refund(attempt.address);
    }

    /// The password was wrong: the attempt stays counted; writes a
    /// `user.login_throttled` event when it was the user's last one.
    pub async fn login_failed(&self, attempt: LoginAttempt) {
        if !attempt.username.last {
            return;
        }
        tracing::warn!(
            address = attempt.peer,
            "too many failed sign-ins for one username; throttled"
        );
        let written = async {
            let Some(user) = crate::store::users::by_username(&self.db.read, &attempt.name).await?
            else {
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

impl super::Core {
    /// Settles a sign-in attempt by the outcome of the password check.
    pub async fn settle_login<T>(
        &self,
        attempt: LoginAttempt,
        result: &Result<T, crate::error::OAuthError>,
    ) {
        use crate::error::OAuthError;
        match result {
            // A right password for a user that changed meanwhile is no guess.
            Ok(_) | Err(OAuthError::AccountChanged) => self.login_succeeded(attempt),
            Err(OAuthError::InvalidGrant(_)) => self.login_failed(attempt).await,
            Err(_) => self.login_not_evaluated(attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_at_max_and_keeps_keys_apart() {
        let l = Limiter::new(3, Duration::from_secs(60), 100);
        let a = l.reserve("alice", Instant::now()).unwrap();
        assert!(!a.last);
        let _b = l.reserve("alice", Instant::now()).unwrap();
        let c = l.reserve("alice", Instant::now()).unwrap();
        assert!(c.last);
        assert!(
            l.reserve("alice", Instant::now())
                .is_err_and(|s| s > 0 && s <= 60)
        );
        assert!(l.reserve("bob", Instant::now()).is_ok());
        l.refund(c);
        assert!(
            l.reserve("alice", Instant::now()).is_ok(),
            "a refunded attempt is available again"
        );
        assert!(l.reserve("alice", Instant::now()).is_err());
        l.reset(a);
        assert!(l.reserve("alice", Instant::now()).is_ok());
    }

    #[test]
    fn racing_threads_get_exactly_max_reservations() {
        let l = std::sync::Arc::new(Limiter::new(10, Duration::from_secs(60), 100));
        let granted: usize = (0..40)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.reserve("victim", Instant::now()).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum();
        assert_eq!(granted, 10);
    }

    #[test]
    fn a_full_table_throttles_new_keys_and_keeps_counted_ones() {
        let l = Limiter::new(3, Duration::from_secs(60), 50);
        for _ in 0..3 {
            let _ = l.reserve("victim", Instant::now());
        }
        let mut refused = 0;
        for i in 0..10_000 {
            if l.reserve(&format!("random-{i}"), Instant::now()).is_err() {
                refused += 1;
            }
        }
        assert_eq!(l.len(), 50);
        assert_eq!(refused, 10_000 - 49, "new keys are refused, not uncounted");
        assert!(
            l.reserve("victim", Instant::now()).is_err(),
            "the attacked key kept its count"
        );
    }

    #[test]
    fn keys_have_a_bounded_size() {
        let l = Limiter::new(3, Duration::from_secs(60), 10);
        let long = "x".repeat(16 * 1024);
        let _ = l.reserve(&long, Instant::now());
        assert_eq!(std::mem::size_of::<Key>(), 16);
        assert_eq!(l.len(), 1);
        // The same long identifier maps to the same counter.
        let _ = l.reserve(&long, Instant::now());
        let _ = l.reserve(&long, Instant::now());
        assert!(l.reserve(&long, Instant::now()).is_err());
    }

    #[test]
    fn the_window_expires() {
        let l = Limiter::new(1, Duration::from_millis(30), 10);
        let _ = l.reserve("k", Instant::now());
        assert!(l.reserve("k", Instant::now()).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(l.reserve("k", Instant::now()).is_ok());
    }
}
