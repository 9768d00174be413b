//! The feed's reach: who follows this instance's `/events` right now (which client, since
//! when, the last event delivered), so an operator can watch a change reach every verifier.
//!
//! Each open stream holds a [`Reached`] entry in memory; delivering an event costs one
//! atomic store in it, nothing else. Once a second each instance publishes its entries as one
//! row (`feed_reach`, see [`Reach::publish`]; rewritten only when a stream opened, closed or
//! delivered, else only refreshed), so what the console shows costs the same however many
//! events flow and whichever instance the operator asks; a row that stops being refreshed (a
//! stopped instance) is left out after [`STALE_AFTER`] seconds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::{self, Db, StoreError};

/// Seconds after its last refresh that an instance's row no longer counts.
pub const STALE_AFTER: i64 = 5;

/// One subscriber as published and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    /// The client whose token opened the stream.
    pub client_id: String,
    /// The user whose events it follows; `None`: a client following every event.
    pub user: Option<String>,
    /// When the stream opened (Unix seconds).
    pub since: i64,
    /// The id of the last event the stream delivered; before the first, the id it started
    /// after (it had everything up to there).
    pub last_event_id: i64,
}

/// One instance's subscribers, as it last published them.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The instance's random id for this run.
    pub id: String,
    /// When it last published (Unix seconds).
    pub refreshed_at: i64,
    /// Its open streams, oldest first.
    pub subscribers: Vec<Subscriber>,
}

/// A stream's entry, one allocation shared by the table and the stream.
struct Entry {
    /// Shared with the stream (and, for a client's stream, its slot).
    client_id: Arc<str>,
    user: Option<String>,
    since: i64,
    last: AtomicI64,
}

#[derive(Default)]
struct Table {
    entries: BTreeMap<u64, Arc<Entry>>,
    next: u64,
    /// Streams closed so far.
    closed: u64,
    /// The table's [`Shape`] when this instance's row was last written in full.
    published: Option<Shape>,
}

/// What makes the published row change: a stream opened or closed changes a count, a
/// delivery the sum of the last ids (a stream's last id only grows).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    opened: u64,
    closed: u64,
    lasts: i64,
}

impl Table {
    fn shape(&self) -> Shape {
        Shape {
            opened: self.next,
            closed: self.closed,
            lasts: self.entries.values().fold(0i64, |sum, e| {
                sum.wrapping_add(e.last.load(Ordering::Relaxed))
            }),
        }
    }
}

/// How [`Reach::publish`] kept the row current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Its subscribers written anew.
    Full,
    /// Nothing changed since the last full write: only its refresh time.
    Refreshed,
}

/// This instance's registry of open streams. Built once per server; cheap to clone.
#[derive(Clone)]
pub struct Reach {
    /// This run's id in `feed_reach`.
    pub instance: Arc<str>,
    table: Arc<Mutex<Table>>,
}

impl Default for Reach {
    fn default() -> Self {
        Self {
            instance: uuid::Uuid::new_v4().to_string().into(),
            table: Arc::default(),
        }
    }
}

/// A stream's entry: updated as it delivers, removed when dropped (the stream ended).
pub struct Reached {
    table: Arc<Mutex<Table>>,
    id: u64,
    entry: Arc<Entry>,
}

impl Reached {
    /// The stream delivered event `id`.
    pub fn delivered(&self, id: i64) {
        self.entry.last.store(id, Ordering::Relaxed);
    }

    /// A handle that records deliveries made for the stream elsewhere (the feed's lane).
    pub fn progress(&self) -> Progress {
        Progress(self.entry.clone())
    }
}

/// Records what a stream delivered, without owning its entry (see [`Reached::progress`]).
pub struct Progress(Arc<Entry>);

impl Progress {
    /// The stream delivered event `id`.
    pub fn delivered(&self, id: i64) {
        self.0.last.store(id, Ordering::Relaxed);
    }
}

impl Drop for Reached {
    fn drop(&mut self) {
        let mut table = self.table.lock().expect("reach");
        table.entries.remove(&self.id);
        table.closed += 1;
    }
}

impl Reach {
    /// Registers a stream opened at `now` by `client_id`'s token, for one `user` or for all,
    /// reading after event `start`.
    pub fn open(&self, client_id: Arc<str>, user: Option<&str>, now: i64, start: i64) -> Reached {
        let entry = Arc::new(Entry {
            client_id,
            user: user.map(str::to_string),
            since: now,
            last: AtomicI64::new(start),
        });
        let mut table = self.table.lock().expect("reach");
        let id = table.next;
        table.next += 1;
        table.entries.insert(id, entry.clone());
        Reached {
            table: self.table.clone(),
            id,
            entry,
        }
    }

    /// This instance's open streams now, oldest first.
    pub fn local(&self) -> Vec<Subscriber> {
        Self::listed(&self.table.lock().expect("reach"))
    }

    fn listed(table: &Table) -> Vec<Subscriber> {
        table
            .entries
            .values()
            .map(|e| Subscriber {
                client_id: e.client_id.to_string(),
                user: e.user.clone(),
                since: e.since,
                last_event_id: e.last.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Publishes this instance's streams at `now` (one row), forgetting stale rows. The row
    /// is written anew only when a stream opened, closed or delivered since it last was;
    /// otherwise only its refresh time moves. (8,000 idle streams would otherwise cost a
    /// list of 8,000 entries and about 600 KB of JSON built every second.)
    pub async fn publish(&self, db: &Db, now: i64) -> Result<Published, StoreError> {
        let stale_before = now - 60;
        let unchanged = {
            let table = self.table.lock().expect("reach");
            table.published.is_some_and(|p| p == table.shape())
        };
        if unchanged
            && store::console::touch_reach(db.writer(), &self.instance, now, stale_before).await?
        {
            return Ok(Published::Refreshed);
        }
        let (subscribers, shape) = {
            let table = self.table.lock().expect("reach");
            (Self::listed(&table), table.shape())
        };
        let json = serde_json::to_string(&subscribers).expect("subscribers serialise");
        drop(subscribers);
        store::console::publish_reach(db.writer(), &self.instance, &json, now, stale_before)
            .await?;
        self.table.lock().expect("reach").published = Some(shape);
        Ok(Published::Full)
    }

    /// Takes this instance's row away (a clean shutdown).
    pub async fn withdraw(&self, db: &Db) -> Result<(), StoreError> {
        self.table.lock().expect("reach").published = None;
        store::console::withdraw_reach(db.writer(), &self.instance).await
    }
}

/// Publishes this instance's streams about once a second, for as long as the server runs.
pub async fn run(reach: Reach, db: Db, clock: Arc<super::clock::Clock>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = reach.publish(&db, clock.now()).await {
            tracing::warn!(error = %e, "publishing the feed's reach");
        }
    }
}

/// Every live instance's published streams at `now` (rows refreshed within [`STALE_AFTER`]).
pub async fn instances(db: &Db, now: i64) -> Result<Vec<Instance>, StoreError> {
    let rows = store::console::reach(&db.read, now - STALE_AFTER).await?;
    Ok(rows
        .into_iter()
        .map(|(id, refreshed_at, json)| Instance {
            id,
            refreshed_at,
            // A row written by a newer version that this one cannot read shows empty.
            subscribers: serde_json::from_str(&json).unwrap_or_default(),
        })
        .collect())
}

/// Users shown with the newest event they may see, at most: a page of hundreds of
/// single-user streams falls back to the log's newest id for the rest.
const USERS_LOOKED_UP: usize = 100;

/// The newest event each subscriber can be sent: the log's newest for a stream of every
/// event, the user's own newest for a stream of one user's (a lookup per distinct user, up
/// to [`USERS_LOOKED_UP`]).
pub async fn newest_for(
    db: &Db,
    instances: &[Instance],
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    let mut users: Vec<&str> = instances
        .iter()
        .flat_map(|i| &i.subscribers)
        .filter_map(|s| s.user.as_deref())
        .collect();
    users.sort_unstable();
    users.dedup();
    let mut out = std::collections::HashMap::new();
    for user in users.into_iter().take(USERS_LOOKED_UP) {
        out.insert(
            user.to_string(),
            store::console::last_event_of(&db.read, user).await?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_listed_while_it_lives_with_the_last_event_it_delivered() {
        let reach = Reach::default();
        let a = reach.open("verifier".into(), None, 100, 0);
        let b = reach.open("app".into(), Some("u1"), 101, 5);
        a.delivered(7);
        let listed = reach.local();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (
                listed[0].client_id.as_str(),
                listed[0].last_event_id,
                listed[0].since
            ),
            ("verifier", 7, 100)
        );
        assert_eq!(listed[1].user.as_deref(), Some("u1"));
        assert_eq!(
            listed[1].last_event_id, 5,
            "where it started, before any delivery"
        );
        drop(a);
        assert_eq!(reach.local().len(), 1);
        drop(b);
        assert!(reach.local().is_empty());
    }
}
