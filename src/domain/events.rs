//! The security event log: its JSON shape and the wake-up signal for subscribers.
//!
//! The database is the only source of truth. After a commit the writer calls
//! [`EventBus::wake`]; a watcher also polls the log's newest id so that changes
//! committed by other processes (the CLI) reach subscribers within a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::task::AtomicWaker;
use serde::Serialize;
use tokio::sync::watch;

use crate::store::events::EventRow;

pub use tessera_proto::{EventKind, SecurityEvent};

/// An event of the feed as an instance holds it: the [`SecurityEvent`] and its wire form
/// on an SSE stream, rendered once on first use: every stream of the instance that
/// delivers this (tail-held) event shares the bytes instead of serialising it again.
/// Serialises as the event.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct FeedEvent {
    /// The event as served.
    pub event: SecurityEvent,
    /// Its SSE frame, once rendered.
    #[serde(skip)]
    pub frame: std::sync::OnceLock<bytes::Bytes>,
}

impl std::ops::Deref for FeedEvent {
    type Target = SecurityEvent;

    fn deref(&self) -> &SecurityEvent {
        &self.event
    }
}

impl From<SecurityEvent> for FeedEvent {
    fn from(event: SecurityEvent) -> Self {
        Self {
            event,
            frame: std::sync::OnceLock::new(),
        }
    }
}

impl From<EventRow> for FeedEvent {
    fn from(r: EventRow) -> Self {
        SecurityEvent {
            id: r.id,
            kind: EventKind::parse(&r.kind),
            sub: r.sub,
            sid: r.sid,
            ver: r.ver,
            roles: r.roles.and_then(|s| serde_json::from_str(&s).ok()),
            reason: r.reason,
            kid: r.kid,
            at: tessera_proto::rfc3339(r.at).unwrap_or_default(),
        }
        .into()
    }
}

/// Wakes subscribers when the log may have grown, or when the server shuts down.
pub struct EventBus {
    tick: watch::Sender<u64>,
    closing: AtomicBool,
    /// SSE streams: a fresher token of a caller at its cap ends the stream of its oldest token.
    streams: Slots,
    /// Long-polls in flight: bounded in time (`MAX_WAIT`), so a full caller is refused.
    polls: Slots,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tick: watch::channel(0).0,
            closing: AtomicBool::new(false),
            streams: Slots::new(MAX_STREAMS_PER_CALLER, MAX_STREAMS_PER_TOKEN, true),
            polls: Slots::new(MAX_POLLS_PER_CALLER, MAX_POLLS_PER_TOKEN, false),
        }
    }
}

/// Open SSE streams allowed per caller (a client id or a user `sub`).
pub const MAX_STREAMS_PER_CALLER: usize = 8;
/// Open SSE streams allowed per access token (`jti`): a stolen token holds at most
/// this many of its caller's slots, and only until it expires.
pub const MAX_STREAMS_PER_TOKEN: usize = 4;
/// Long-polls in flight per caller, and per token.
pub const MAX_POLLS_PER_CALLER: usize = 8;
/// Long-polls in flight per access token.
pub const MAX_POLLS_PER_TOKEN: usize = 2;

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This token already holds its share.
    Token,
    /// The caller's slots are taken by tokens no older than this one.
    Caller,
}

struct Held {
    id: u64,
    /// Shared by the token's slots.
    jti: Arc<str>,
    issued_at: i64,
    evicted: Arc<Eviction>,
}

#[derive(Default)]
struct Table {
    /// Keyed by the caller, whose slots share the key's one copy of its name.
    by_caller: HashMap<Arc<str>, Vec<Held>>,
    next_id: u64,
}

/// Set when a fresher token of the caller took a slot: a flag and the one waker of the
/// stream holding it (an idle stream holds no registration of its own for it).
#[derive(Default)]
pub struct Eviction {
    taken: AtomicBool,
    waker: AtomicWaker,
}

impl Eviction {
    fn evict(&self) {
        self.taken.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Ready once the slot was taken; registers `cx`'s waker until then.
    pub fn poll(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // Registered before the flag is read, so an eviction after the read wakes us.
        self.waker.register(cx.waker());
        if self.taken.load(Ordering::SeqCst) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

/// Slots counted per caller and per token.
pub struct Slots {
    table: Arc<Mutex<Table>>,
    per_caller: usize,
    per_token: usize,
    /// Whether a fresher token may take the slot of the caller's oldest token.
    evicts: bool,
}

/// Holds one slot until dropped; `evicted` fires when a fresher token took it over.
pub struct Slot {
    table: Arc<Mutex<Table>>,
    caller: Arc<str>,
    id: u64,
    /// Set when a fresher token of the caller took this slot (the stream ends `superseded`).
    pub evicted: Arc<Eviction>,
}

impl Slot {
    /// The caller whose slot this is (one copy shared by the caller's slots).
    pub fn caller(&self) -> &Arc<str> {
        &self.caller
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.table.lock().expect("slots");
        if let Some(held) = table.by_caller.get_mut(&*self.caller) {
            held.retain(|h| h.id != self.id);
            if held.is_empty() {
                table.by_caller.remove(&self.caller);
            }
        }
    }
}

impl Slots {
    fn new(per_caller: usize, per_token: usize, evicts: bool) -> Self {
        Self {
            table: Arc::default(),
            per_caller,
            per_token,
            evicts,
        }
    }

    /// Takes a slot of `caller` for the token `jti` issued at `issued_at`. When slots
    /// evict, a token at its share takes over its own oldest slot, and when the
    /// caller is full the slot of its oldest token goes to a strictly fresher one:
    /// the real holder, who fetches fresh tokens, always gets a slot back from
    /// whoever replays an old one.
    pub fn take(&self, caller: &str, jti: &str, issued_at: i64) -> Result<Slot, Refused> {
        let mut table = self.table.lock().expect("slots");
        let id = table.next_id;
        table.next_id += 1;
        let caller: Arc<str> = match table.by_caller.get_key_value(caller) {
            Some((shared, _)) => shared.clone(),
            None => caller.into(),
        };
        let held = table.by_caller.entry(caller.clone()).or_default();
        if held.iter().filter(|h| &*h.jti == jti).count() >= self.per_token {
            if !self.evicts {
                return Err(Refused::Token);
            }
            // A reconnect: its stream replaces the token's oldest, which may not have
            // noticed yet that its peer is gone.
            let own = held
                .iter()
                .position(|h| &*h.jti == jti)
                .expect("counted above");
            held.remove(own).evicted.evict();
        } else if held.len() >= self.per_caller {
            let oldest = held
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| (h.issued_at, h.id))
                .map(|(i, h)| (i, h.issued_at));
            match oldest {
                Some((i, at)) if self.evicts && at < issued_at => {
                    held.remove(i).evicted.evict();
                }
                _ => return Err(Refused::Caller),
            }
        }
        let evicted = Arc::new(Eviction::default());
        let jti = match held.iter().find(|h| &*h.jti == jti) {
            Some(h) => h.jti.clone(),
            None => jti.into(),
        };
        held.push(Held {
            id,
            jti,
            issued_at,
            evicted: evicted.clone(),
        });
        Ok(Slot {
            table: self.table.clone(),
            caller,
            id,
            evicted,
        })
    }

    fn count(&self) -> usize {
        let table = self.table.lock().expect("slots");
        table.by_caller.values().map(Vec::len).sum()
    }
}

impl EventBus {
    /// Says "the log may have grown": the tail reads it once for every subscriber.
    pub fn wake(&self) {
        self.tick.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Woken by [`EventBus::wake`] (the tail's reader waits on it).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// Takes one of `caller`'s stream slots for token `jti`.
    pub fn open_stream(&self, caller: &str, jti: &str, issued_at: i64) -> Result<Slot, Refused> {
        self.streams.take(caller, jti, issued_at)
    }

    /// Takes one of `caller`'s long-poll slots for token `jti`.
    pub fn open_poll(&self, caller: &str, jti: &str, issued_at: i64) -> Result<Slot, Refused> {
        self.polls.take(caller, jti, issued_at)
    }

    /// How many SSE streams are open.
    pub fn open_streams(&self) -> usize {
        self.streams.count()
    }

    /// How many long-polls are in flight.
    pub fn open_polls(&self) -> usize {
        self.polls.count()
    }

    /// Ends every feed (graceful shutdown).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether the server is shutting down (feeds end with `shutting_down`).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_its_share_and_a_fresher_token_evicts_the_oldest() {
        let slots = Slots::new(3, 2, true);
        let a0 = slots.take("gw", "stolen", 100).unwrap();
        let a1 = slots.take("gw", "stolen", 100).unwrap();
        // A third of one token replaces its first.
        let _a2 = slots.take("gw", "stolen", 100).unwrap();
        assert_eq!(slots.count(), 2);
        drop(a0);
        assert_eq!(slots.count(), 2);
        let _b = slots.take("gw", "fresh", 200).unwrap();
        // Full: the same age is refused, a fresher token takes the oldest slot.
        assert_eq!(slots.take("gw", "peer", 100).err(), Some(Refused::Caller));
        let _c = slots.take("gw", "fresher", 300).unwrap();
        assert_eq!(slots.count(), 3);
        drop(a1);
        assert_eq!(slots.count(), 3, "the evicted slot was already given up");
        // Other callers are independent.
        assert!(slots.take("other", "stolen", 100).is_ok());
        let polls = Slots::new(2, 1, false);
        let _p = polls.take("gw", "old", 1).unwrap();
        assert_eq!(polls.take("gw", "old", 1).err(), Some(Refused::Token));
        let _q = polls.take("gw", "new", 2).unwrap();
        assert_eq!(polls.take("gw", "newer", 3).err(), Some(Refused::Caller));
    }

    /// An evicted slot's holder is woken, and the caller's slots share one copy of its name.
    #[test]
    fn an_eviction_wakes_the_slots_holder() {
        use std::task::{Context, Poll, Wake, Waker};
        struct Count(std::sync::atomic::AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let woken = Arc::new(Count(Default::default()));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let slots = Slots::new(2, 1, true);
        let old = slots.take("gw", "old", 1).unwrap();
        let other = slots.take("gw", "other", 1).unwrap();
        assert!(Arc::ptr_eq(old.caller(), other.caller()));
        assert_eq!(old.evicted.poll(&mut cx), Poll::Pending);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        let _new = slots.take("gw", "new", 2).unwrap();
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the holder was not woken"
        );
        assert_eq!(old.evicted.poll(&mut cx), Poll::Ready(()));
        assert_eq!(other.evicted.poll(&mut cx), Poll::Pending);
    }
}
