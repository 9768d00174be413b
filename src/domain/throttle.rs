//! Failure counters for brute-force throttling, with bounded memory.
//!
//! Each key (a username, a source address, a client id) counts failures in a
//! fixed window. At `max` failures further attempts are refused until the window
//! ends. The table holds at most `capacity` keys: when full, expired entries go
//! first, then the ones with a single failure, so a flood of random usernames
//! cannot push out the counter of a user under a real guessing attack.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    max: u32,
    window: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    since: Instant,
}

/// What a failure did to the counter.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    Counted,
    /// This failure reached the limit: the key is throttled from now on.
    JustThrottled,
}

impl Limiter {
    pub fn new(max: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max,
            window,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when `key` is throttled.
    pub fn check(&self, key: &str) -> Option<u64> {
        let entries = self.entries.lock().expect("limiter lock");
        let e = entries.get(key)?;
        let elapsed = e.since.elapsed();
        (e.failures >= self.max && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    pub fn fail(&self, key: &str) -> Recorded {
        let mut entries = self.entries.lock().expect("limiter lock");
        let now = Instant::now();
        if !entries.contains_key(key) && entries.len() >= self.capacity {
            let window = self.window;
            entries.retain(|_, e| now.duration_since(e.since) < window);
            if entries.len() >= self.capacity {
                entries.retain(|_, e| e.failures > 1);
            }
            if entries.len() >= self.capacity {
                return Recorded::Counted;
            }
        }
        let e = entries.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            since: now,
        });
        if now.duration_since(e.since) >= self.window {
            *e = Entry {
                failures: 0,
                since: now,
            };
        }
        e.failures += 1;
        if e.failures == self.max {
            Recorded::JustThrottled
        } else {
            Recorded::Counted
        }
    }

    pub fn succeed(&self, key: &str) {
        self.entries.lock().expect("limiter lock").remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("limiter lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The three limiters of `/token`, `/revoke` and `/introspect`.
pub struct Throttle {
    pub usernames: Limiter,
    pub addresses: Limiter,
    pub clients: Limiter,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            usernames: Limiter::new(max_failures, window, 100_000),
            // One address may host many users (NAT): allow it more failures.
            addresses: Limiter::new(max_failures.saturating_mul(5), window, 100_000),
            clients: Limiter::new(max_failures, window, 10_000),
        }
    }
}

impl super::Core {
    /// Records a failed sign-in for `username` from `address`; writes a
    /// `user.login_throttled` event when the user's limit is reached.
    pub async fn login_failed(&self, username: &str, address: &str) {
        self.throttle.addresses.fail(address);
        if self.throttle.usernames.fail(&username.to_lowercase()) != Recorded::JustThrottled {
            return;
        }
        tracing::warn!(
            address,
            "too many failed sign-ins for one username; throttled"
        );
        let written = async {
            let Some(user) = crate::store::users::by_username(&self.db.read, username).await?
            else {
                return Ok(());
            };
            let mut tx = self.db.begin().await?;
            let event = crate::store::events::NewEvent {
                kind: "user.login_throttled",
                sub: Some(&user.id),
                reason: Some("too_many_failures"),
                ..Default::default()
            };
            crate::store::events::append(&mut tx, &event, crate::store::now()).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            self.events.wake();
            Ok::<_, crate::store::StoreError>(())
        };
        if let Err(e) = written.await {
            tracing::error!(error = %e, "writing user.login_throttled");
        }
    }

    /// `Some(retry_after)` when sign-ins for `username` or from `address` are throttled.
    pub fn login_throttled(&self, username: &str, address: &str) -> Option<u64> {
        self.throttle
            .usernames
            .check(&username.to_lowercase())
            .or_else(|| self.throttle.addresses.check(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_at_max_and_keeps_keys_apart() {
        let l = Limiter::new(3, Duration::from_secs(60), 100);
        assert_eq!(l.fail("alice"), Recorded::Counted);
        assert_eq!(l.fail("alice"), Recorded::Counted);
        assert!(l.check("alice").is_none());
        assert_eq!(l.fail("alice"), Recorded::JustThrottled);
        assert!(l.check("alice").is_some_and(|s| s > 0 && s <= 60));
        assert!(l.check("bob").is_none());
        l.succeed("alice");
        assert!(l.check("alice").is_none());
    }

    #[test]
    fn memory_is_bounded_and_attacked_keys_survive_a_flood() {
        let l = Limiter::new(3, Duration::from_secs(60), 50);
        for _ in 0..3 {
            l.fail("victim");
        }
        for i in 0..10_000 {
            l.fail(&format!("random-{i}"));
        }
        assert!(l.len() <= 50);
        assert!(l.check("victim").is_some());
    }

    #[test]
    fn the_window_expires() {
        let l = Limiter::new(1, Duration::from_millis(30), 10);
        l.fail("k");
        assert!(l.check("k").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(l.check("k").is_none());
    }
}
