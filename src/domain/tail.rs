//! The in-memory tail of the security event log.
//!
//! Each instance reads each new event from the database once, here, and keeps the
//! newest `event_tail` of them; every subscriber takes from this tail what it may
//! see. A user's streams are woken only by events that concern that user. A
//! subscriber whose cursor is older than the tail (it resumed from behind, or
//! stopped reading for a while) reads the database for its catch-up and then
//! joins the tail: a slow subscriber costs the server its cursor, never a buffer.
//!
//! Correctness rests on the log's ids committing in order (`store::Db::begin`):
//! the tail holds every event whose id is in `(floor, last]`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::events::{EventKind, FeedEvent};
use super::feed::Feed;
use crate::store::{self, StoreError};

/// Events read from the database by one query, by the tail or by a catch-up.
pub const READ_BATCH: i64 = 500;

/// What a subscriber gets for its cursor.
pub enum Take {
    /// The events after the cursor it may see (at most the number asked for), and
    /// the id up to which the tail was looked through: the new cursor.
    Events {
        /// The events, in id order.
        events: Vec<Arc<FeedEvent>>,
        /// The subscriber's new cursor.
        through: i64,
    },
    /// The tail no longer holds what follows the cursor: read the database.
    Behind,
}

struct Window {
    events: VecDeque<Arc<FeedEvent>>,
    /// Every event with an id in `(floor, last]` is in `events`.
    floor: i64,
    last: i64,
}

/// The instance's window on the newest events of the log, and the signals that wake
/// the subscribers an event concerns.
///
/// A subscriber waits on one signal (its user's, or the one for every event): a key
/// event and the shutdown bump every signal after setting [`Tail::keys_seen`] or
/// [`Tail::is_closing`], which a subscriber reads at each wake-up. One wait list per
/// subscriber instead of three keeps a fan-out to thousands of streams to one wake
/// each.
pub struct Tail {
    window: RwLock<Window>,
    capacity: usize,
    /// The newest id in the tail: wakes the streams that see every event.
    all: watch::Sender<i64>,
    /// Per user with a subscriber, the id of the newest event that concerns them.
    users: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// Bumped when a key event arrived and the key set was reloaded: every stream
    /// checks that its token's signing key is still accepted (in memory) then.
    keys: AtomicU64,
    /// Set once, at shutdown.
    closing: AtomicBool,
    /// Database reads made by the tail itself (one per wake-up, whatever the
    /// number of subscribers).
    reads: AtomicU64,
    /// Database reads made by subscribers behind the tail (their catch-ups).
    catch_ups: AtomicU64,
    /// One filler at a time (the reader task, or a long-poll making sure it has
    /// seen what was committed before it): events are pushed once, in order.
    filling: tokio::sync::Mutex<()>,
}

impl Tail {
    /// A tail that starts after event `last` (the log's newest id at start).
    pub fn new(capacity: usize, last: i64) -> Self {
        Self {
            window: RwLock::new(Window {
                events: VecDeque::with_capacity(capacity.min(1024)),
                floor: last,
                last,
            }),
            capacity: capacity.max(1),
            all: watch::channel(last).0,
            users: Mutex::default(),
            keys: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
            filling: tokio::sync::Mutex::new(()),
        }
    }

    /// The newest event id the tail holds (or started after).
    pub fn last(&self) -> i64 {
        self.window.read().expect("tail").last
    }

    /// The events after `cursor` that `user` (or, for `None`, anyone) may see, up
    /// to `max`.
    pub fn after(&self, cursor: i64, user: Option<&str>, max: usize) -> Take {
        let w = self.window.read().expect("tail");
        if cursor < w.floor {
            return Take::Behind;
        }
        let start = w.events.partition_point(|e| e.id <= cursor);
        let mut events = Vec::new();
        let mut through = w.last.max(cursor);
        for e in w.events.range(start..) {
            if user.is_some_and(|u| e.sub.as_deref() != Some(u)) {
                continue;
            }
            if events.len() == max {
                through = events.last().map_or(cursor, |e: &Arc<FeedEvent>| e.id);
                break;
            }
            events.push(e.clone());
        }
        Take::Events { events, through }
    }

    /// What follows `cursor` for a subscriber, at most `max`: from the tail, or
    /// from the database while the cursor is behind it. Advances the cursor.
    pub async fn take(
        &self,
        feed: &Feed,
        cursor: &mut i64,
        user: Option<&str>,
        max: usize,
    ) -> Result<Vec<Arc<FeedEvent>>, StoreError> {
        match self.after(*cursor, user, max) {
            Take::Events { events, through } => {
                *cursor = through;
                Ok(events)
            }
            Take::Behind => {
                let (events, next) = self.catch_up(feed, *cursor, user).await?;
                *cursor = next;
                Ok(events)
            }
        }
    }

    /// Catch-up for a cursor behind the tail: one database read. Returns the events
    /// and the new cursor; once the read comes back short, the cursor joins the tail.
    pub async fn catch_up(
        &self,
        feed: &Feed,
        cursor: i64,
        user: Option<&str>,
    ) -> Result<(Vec<Arc<FeedEvent>>, i64), StoreError> {
        // Everything up to the floor is committed: a short read has seen it all.
        let floor = self.window.read().expect("tail").floor;
        let rows = store::events::after(&feed.db.read, cursor, user, READ_BATCH).await?;
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
        let short = (rows.len() as i64) < READ_BATCH;
        let mut next = rows.last().map_or(cursor, |r| r.id);
        if short {
            next = next.max(floor);
        }
        Ok((rows.into_iter().map(|r| Arc::new(r.into())).collect(), next))
    }

    /// Reads what the log holds beyond the tail, in order, and wakes whom it
    /// concerns.
    pub async fn fill(&self, feed: &Feed) -> Result<usize, StoreError> {
        let _one = self.filling.lock().await;
        let mut added = 0;
        loop {
            let rows = store::events::after(&feed.db.read, self.last(), None, READ_BATCH).await?;
            self.reads.fetch_add(1, Ordering::Relaxed);
            let n = rows.len();
            if n == 0 {
                return Ok(added);
            }
            let events: Vec<Arc<FeedEvent>> =
                rows.into_iter().map(|r| Arc::new(r.into())).collect();
            let keys_changed = events.iter().any(|e| e.kind == EventKind::KeysRotated);
            if keys_changed {
                // Streams check their keys against the key set that knows of this event.
                if let Err(e) = feed.signing.reload_keys().await {
                    tracing::warn!(error = %crate::error_chain(&e), "event tail: reloading keys");
                }
            }
            self.push(events);
            if keys_changed {
                self.keys.fetch_add(1, Ordering::Release);
                self.wake_everyone();
            }
            added += n;
            if (n as i64) < READ_BATCH {
                return Ok(added);
            }
        }
    }

    fn push(&self, events: Vec<Arc<FeedEvent>>) {
        let Some(last) = events.last().map(|e| e.id) else {
            return;
        };
        let mut concerned: Vec<(String, i64)> = Vec::new();
        {
            let mut w = self.window.write().expect("tail");
            for e in events {
                if let Some(sub) = &e.sub {
                    concerned.push((sub.clone(), e.id));
                }
                w.events.push_back(e);
            }
            while w.events.len() > self.capacity {
                if let Some(old) = w.events.pop_front() {
                    w.floor = old.id;
                }
            }
            w.last = last;
        }
        // Woken after the window holds the events.
        {
            let mut users = self.users.lock().expect("tail users");
            for (sub, id) in concerned {
                if let Some(tx) = users.get(&sub) {
                    tx.send_replace(id);
                }
            }
            // Users whose subscribers are all gone.
            if users.len() > 64 {
                users.retain(|_, tx| tx.receiver_count() > 0);
            }
        }
        self.all.send_replace(last);
    }

    /// Woken when any event arrives.
    pub fn watch_all(&self) -> watch::Receiver<i64> {
        self.all.subscribe()
    }

    /// Woken only when an event that concerns `sub` arrives.
    pub fn watch_user(&self, sub: &str) -> watch::Receiver<i64> {
        let mut users = self.users.lock().expect("tail users");
        match users.get(sub) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(self.last());
                users.insert(sub.to_string(), tx);
                rx
            }
        }
    }

    /// How many key events the tail has seen (the key set reloaded for each): a
    /// subscriber that saw a smaller number re-checks its token's key.
    pub fn keys_seen(&self) -> u64 {
        self.keys.load(Ordering::Acquire)
    }

    /// Whether the instance is shutting down: every feed ends.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Wakes every feed to end it (shutdown).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake_everyone();
    }

    /// Wakes every subscriber, whatever it follows (after the flag it must read is set).
    fn wake_everyone(&self) {
        self.all.send_modify(|_| {});
        for tx in self.users.lock().expect("tail users").values() {
            tx.send_modify(|_| {});
        }
    }

    /// Database reads made by the tail so far (not counting catch-ups).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Database reads made by subscribers catching up from behind the tail so far.
    pub fn catch_ups(&self) -> u64 {
        self.catch_ups.load(Ordering::Relaxed)
    }

    /// How many users have a subscriber right now (for tests and metrics).
    pub fn watched_users(&self) -> usize {
        let users = self.users.lock().expect("tail users");
        users.values().filter(|tx| tx.receiver_count() > 0).count()
    }
}

/// The tail's reader: one per instance, woken by local commits, by other
/// instances (PostgreSQL `NOTIFY`) and by the log watcher's poll.
pub async fn run(feed: Feed) {
    let mut wake = feed.events.subscribe();
    loop {
        wake.borrow_and_update();
        if let Err(e) = feed.tail.fill(&feed).await {
            tracing::warn!(error = %crate::error_chain(&e), "event tail: reading the log failed; retrying");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        if feed.events.is_closing() {
            feed.tail.close();
            return;
        }
        if wake.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::SecurityEvent;

    fn event(id: i64, sub: Option<&str>) -> Arc<FeedEvent> {
        Arc::new(
            SecurityEvent {
                id,
                kind: EventKind::RolesChanged,
                sub: sub.map(str::to_string),
                sid: None,
                ver: None,
                roles: None,
                reason: None,
                kid: None,
                at: String::new(),
            }
            .into(),
        )
    }

    fn ids(take: Take) -> (Vec<i64>, i64) {
        match take {
            Take::Events { events, through } => (events.iter().map(|e| e.id).collect(), through),
            Take::Behind => panic!("behind"),
        }
    }

    #[test]
    fn the_tail_serves_what_it_holds_filtered_and_says_when_a_cursor_is_behind() {
        let tail = Tail::new(4, 10);
        tail.push(vec![
            event(11, Some("a")),
            event(13, Some("b")),
            event(14, None),
        ]);
        assert_eq!(ids(tail.after(10, None, 10)), (vec![11, 13, 14], 14));
        assert_eq!(ids(tail.after(11, Some("a"), 10)), (vec![], 14));
        assert_eq!(ids(tail.after(10, Some("b"), 10)), (vec![13], 14));
        // At most `max`, and the cursor stops at the last one given.
        assert_eq!(ids(tail.after(10, None, 2)), (vec![11, 13], 13));
        assert_eq!(ids(tail.after(14, None, 10)), (vec![], 14));
        // A cursor beyond the tail (it read the database further) stays where it is.
        assert_eq!(ids(tail.after(20, None, 10)), (vec![], 20));
        // Three more: 11 and 13 fall out, the floor moves to 13.
        tail.push(vec![
            event(15, Some("a")),
            event(16, Some("a")),
            event(17, None),
        ]);
        assert!(matches!(tail.after(12, None, 10), Take::Behind));
        assert!(matches!(tail.after(10, Some("a"), 10), Take::Behind));
        assert_eq!(ids(tail.after(13, None, 10)), (vec![14, 15, 16, 17], 17));
        assert_eq!(ids(tail.after(13, Some("a"), 10)), (vec![15, 16], 17));
    }

    #[test]
    fn only_the_users_concerned_are_woken() {
        let tail = Tail::new(8, 0);
        let mut a = tail.watch_user("a");
        let mut b = tail.watch_user("b");
        let mut all = tail.watch_all();
        a.borrow_and_update();
        b.borrow_and_update();
        all.borrow_and_update();
        tail.push(vec![event(1, Some("a")), event(2, None)]);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        assert!(all.has_changed().unwrap());
        assert_eq!(*all.borrow(), 2);
        drop(b);
        assert_eq!(tail.watched_users(), 1);
    }
}
