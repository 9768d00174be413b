//! The one clock the server's rules read (the domain, an access token's `exp`, the event
//! stream's expiry; the store is given its times): the system's in production; tests pin
//! it and move it (`Clock::pin`, `Clock::advance`) instead of waiting for time to pass.
//! Monotonic `Instant`s elsewhere only time real waits (timeouts, heartbeats, backoff).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall time (unix) and monotonic time, from the system unless a test pinned them.
#[derive(Debug, Default)]
pub struct Clock {
    pinned: Mutex<Option<Pinned>>,
}

#[derive(Debug, Clone, Copy)]
struct Pinned {
    wall: Duration,
    mono: Instant,
}

impl Clock {
    /// The wall clock as a duration since the unix epoch (sub-second).
    pub fn wall(&self) -> Duration {
        match *self.lock() {
            Some(p) => p.wall,
            None => system_wall(),
        }
    }

    /// Unix seconds: what timestamps in the database and in tokens hold.
    pub fn now(&self) -> i64 {
        self.wall().as_secs() as i64
    }

    /// Monotonic time, for windows that a stepped wall clock must not move (the throttle).
    pub fn instant(&self) -> Instant {
        match *self.lock() {
            Some(p) => p.mono,
            None => Instant::now(),
        }
    }

    /// Stops the clock at `wall` (since the unix epoch): from now on it moves only
    /// by [`Clock::advance`]. For tests.
    pub fn pin(&self, wall: Duration) {
        let mono = self.instant();
        *self.lock() = Some(Pinned { wall, mono });
    }

    /// Moves a pinned clock forward (pinning it at the system time first). For tests.
    pub fn advance(&self, by: Duration) {
        let mut pinned = self.lock();
        let p = pinned.get_or_insert_with(|| Pinned {
            wall: system_wall(),
            mono: Instant::now(),
        });
        p.wall += by;
        p.mono += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pinned>> {
        // A poisoned lock still holds a valid `Option<Pinned>`.
        self.pinned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn system_wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339, or `-` when absent or out of range (listings, admin bodies).
pub fn rfc3339(t: Option<i64>) -> String {
    t.and_then(tessera_proto::rfc3339)
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_moves_only_when_advanced() {
        let clock = Clock::default();
        clock.pin(Duration::from_millis(10_900));
        let mono = clock.instant();
        assert_eq!(clock.now(), 10);
        clock.advance(Duration::from_millis(200));
        assert_eq!(clock.now(), 11);
        assert_eq!(clock.wall(), Duration::from_millis(11_100));
        assert_eq!(clock.instant() - mono, Duration::from_millis(200));
    }
}
