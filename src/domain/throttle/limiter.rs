//! Failure counters per key, with bounded memory, that reserve an evaluation
//! before the credential is checked.
//!
//! Hand-written, not a rate-limit crate (governor and kin): those meter requests,
//! while this reserves an evaluation before the credential check, holds it while
//! the check runs and settles it by the outcome (a failure counts, a success or
//! an attempt never evaluated gives it back).
//!
//! Each key (a normalised username, a source address, a client id with an
//! address) counts *failures*; attempts still being evaluated are *in flight*.
//! While failures plus attempts in flight reach `max`, a new attempt waits
//! (bounded) for one in flight to settle instead of being refused: concurrent
//! right passwords are no failures. Once failures reach `max`, the key is either
//! refused until its window ends (`delay: None`) or, for usernames, allowed one
//! attempt at a time after a delay that doubles with every further failure
//! (capped). A key's failures are forgotten `window` after its last failure.
//!
//! Keys are stored as a 128-bit keyed hash of the identifier, never the
//! identifier itself, so an entry costs the same few dozen bytes whatever the
//! identifier's length. A full table never refuses new keys (that would let a
//! flood of new keys throttle everyone): it forgets expired entries, then the
//! least informative half (fewest failures, then the oldest), never one with an
//! attempt in flight. A flood of random names thus evicts its own one-failure
//! entries long before a real user's counter.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A bounded-size key: the first 16 bytes of SHA-256(secret ‖ identifier).
type Key = [u8; 16];

/// Memory of one entry, key and value, with the hash map's own overhead
/// rounded up: what the documented figures per table are computed from.
pub const ENTRY_BYTES: usize = 80;

/// The progressive delay of a key past its failure limit: `first`, doubled
/// with every further failure, at most `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Delay {
    /// The wait after the `max`-th failure.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Delay {
    fn after(self, beyond: u32) -> Duration {
        self.first
            .saturating_mul(1u32.checked_shl(beyond).unwrap_or(u32::MAX))
            .min(self.cap)
    }
}

/// Failures per key over a fixed-size table, so an attacker cannot grow memory.
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    max: u32,
    window: Duration,
    capacity: usize,
    delay: Option<Delay>,
    /// The per-process random key of the key hash (SipHash): colliding identifiers
    /// cannot be searched for offline.
    hasher: RandomState,
    entries: Mutex<HashMap<Key, Entry>>,
    /// Woken whenever an attempt settles: what waiting attempts wait for.
    settled: Notify,
    /// Attempts waiting for a slot now.
    waiting: AtomicUsize,
}

/// Counts an attempt as waiting for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    in_flight: u32,
    /// The last failure (or the entry's creation): the window and the delay run from it.
    last: Instant,
}

impl Entry {
    fn idle(&self) -> bool {
        self.failures == 0 && self.in_flight == 0
    }
}

/// Why an attempt was refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Seconds until an attempt can be allowed again (`Retry-After`).
    pub retry_after: u64,
    /// The key is past its failure limit (`false`: attempts in flight filled it
    /// for longer than an attempt may wait).
    pub failures: bool,
}

/// An attempt reserved against a key, in flight until settled. Dropped
/// unsettled (its request ended before the credential was evaluated), it is
/// given back: an unevaluated attempt tells its sender nothing.
#[must_use = "an attempt is settled by its outcome, or given back when dropped"]
pub struct Ticket {
    inner: Arc<Inner>,
    key: Key,
    settled: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket")
    }
}

enum Check {
    Granted,
    Refused(Refused),
    /// Wait for an attempt in flight to settle, or until `until`; `refused` if
    /// the wait runs out.
    Wait {
        until: Option<Instant>,
        refused: Refused,
    },
}

fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Limiter {
    /// At most `max` failures per key, forgotten `window` after the last one,
    /// over at most `capacity` keys (more only while attempts are in flight);
    /// past `max`, refused until the window ends, or allowed after `delay`.
    pub fn new(max: u32, window: Duration, capacity: usize, delay: Option<Delay>) -> Self {
        Self {
            inner: Arc::new(Inner {
                max,
                window,
                capacity,
                delay,
                hasher: RandomState::new(),
                entries: Mutex::new(HashMap::new()),
                settled: Notify::new(),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// 128 bits of keyed SipHash of `id` (two domain-separated outputs): the map holds
    /// fixed-size keys, never the identifiers (usernames, addresses) themselves.
    fn key(&self, id: &str) -> Key {
        let h = &self.inner.hasher;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&h.hash_one((id, 0u8)).to_le_bytes());
        key[8..].copy_from_slice(&h.hash_one((id, 1u8)).to_le_bytes());
        key
    }

    /// Reserves an attempt for `id` at once, or says why not.
    fn check(&self, key: Key, now: Instant) -> Check {
        let inner = &*self.inner;
        let mut entries = inner.entries.lock().expect("limiter lock");
        if !entries.contains_key(&key) && entries.len() >= inner.capacity {
            inner.evict(&mut entries, now);
        }
        let e = entries.entry(key).or_insert(Entry {
            failures: 0,
            in_flight: 0,
            last: now,
        });
        if e.in_flight == 0 && now.saturating_duration_since(e.last) >= inner.window {
            *e = Entry {
                failures: 0,
                in_flight: 0,
                last: now,
            };
        }
        let check = if e.failures >= inner.max {
            match inner.delay {
                None => Check::Refused(Refused {
                    retry_after: seconds((e.last + inner.window).saturating_duration_since(now))
                        .max(1),
                    failures: true,
                }),
                // Past the limit, one attempt at a time; if the one in flight fails,
                // the next waits the delay after it.
                Some(delay) if e.in_flight > 0 => Check::Wait {
                    until: None,
                    refused: Refused {
                        retry_after: seconds(delay.after(e.failures + 1 - inner.max)),
                        failures: true,
                    },
                },
                Some(delay) => {
                    let at = e.last + delay.after(e.failures - inner.max);
                    if now >= at {
                        Check::Granted
                    } else {
                        Check::Wait {
                            until: Some(at),
                            refused: Refused {
                                retry_after: seconds(at - now),
                                failures: true,
                            },
                        }
                    }
                }
            }
        } else if e.failures + e.in_flight >= inner.max {
            Check::Wait {
                until: None,
                refused: Refused {
                    retry_after: 1,
                    failures: false,
                },
            }
        } else {
            Check::Granted
        };
        match check {
            Check::Granted => e.in_flight += 1,
            _ if e.idle() => {
                entries.remove(&key);
            }
            _ => {}
        }
        check
    }

    /// Reserves an attempt for `id`, waiting at most `wait` for attempts in
    /// flight to settle or for a delay to pass; `Err` when it cannot within
    /// that (or the key is past its limit and has no delay).
    pub async fn reserve(
        &self,
        id: &str,
        clock: &super::super::clock::Clock,
        wait: Duration,
    ) -> Result<Ticket, Refused> {
        let key = self.key(id);
        // How long this caller may wait, in real time; the throttle's windows use `clock`.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a settle right after it is not missed.
            let settled = self.inner.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let now = clock.instant();
            let (until, refused) = match self.check(key, now) {
                Check::Granted => {
                    return Ok(Ticket {
                        inner: self.inner.clone(),
                        key,
                        settled: false,
                    });
                }
                Check::Refused(r) => return Err(r),
                Check::Wait { until, refused } => (until, refused),
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let pause = until.map_or(left, |at| at - now);
            if left.is_zero() || pause > left {
                return Err(refused);
            }
            let waiting = Waiting::new(&self.inner.waiting);
            tokio::select! {
                () = &mut settled => {}
                () = tokio::time::sleep(pause) => {}
            }
            drop(waiting);
        }
    }

    /// Attempts waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.inner.entries.lock().expect("limiter lock").len()
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Makes room in a full table: expired entries first, then the least
    /// informative half of the rest. Entries with attempts in flight stay.
    fn evict(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let window = self.window;
        entries.retain(|_, e| e.in_flight > 0 || now.saturating_duration_since(e.last) < window);
        if entries.len() < self.capacity {
            return;
        }
        let mut idle: Vec<(u32, Instant, Key)> = entries
            .iter()
            .filter(|(_, e)| e.in_flight == 0)
            .map(|(k, e)| (e.failures, e.last, *k))
            .collect();
        let n = idle.len() / 2;
        if n == 0 {
            return;
        }
        idle.select_nth_unstable(n - 1);
        for (_, _, k) in &idle[..n] {
            entries.remove(k);
        }
    }

    /// Ends an attempt in flight; `failed` counts it. True when that failure
    /// was the key's `max`-th.
    fn settle(&self, key: &Key, outcome: Outcome) -> bool {
        let mut entries = self.entries.lock().expect("limiter lock");
        let Some(e) = entries.get_mut(key) else {
            return false;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        let mut reached = false;
        match outcome {
            Outcome::Failed(now) => {
                e.failures = e.failures.saturating_add(1);
                e.last = now;
                reached = e.failures == self.max;
            }
            Outcome::Succeeded => e.failures = 0,
            Outcome::Unevaluated => {}
        }
        if e.idle() {
            entries.remove(key);
        }
        drop(entries);
        self.settled.notify_waiters();
        reached
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    /// At this time, by the injected clock (the failure window counts from it).
    Failed(Instant),
    Succeeded,
    Unevaluated,
}

impl Ticket {
    /// The credential was wrong: the attempt counts. True when it was the key's
    /// last allowed failure (the key is now throttled).
    pub fn failed(mut self, now: Instant) -> bool {
        self.settled = true;
        self.inner.settle(&self.key, Outcome::Failed(now))
    }

    /// The credential was right: the key's failures are forgotten.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.inner.settle(&self.key, Outcome::Succeeded);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.inner.settle(&self.key, Outcome::Unevaluated);
        }
    }
}

#[cfg(test)]
mod tests;
