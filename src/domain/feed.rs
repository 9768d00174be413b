//! The event feed: what `/events` and its streams use (the in-memory tail, the slots,
//! the caller's checks), and its reads of the log: where a subscriber starts, and the
//! events after a cursor.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use super::events::{EventBus, FeedEvent};
use super::keys::{self, KeyRing};
use super::liveness::Live;
use super::tail::Tail;
use super::tokens::Tokens;
use crate::config::Config;
use crate::store::{self, Db, StoreError};

/// The feed: a handle on its [`Parts`], built once by `Core::open`. A clone (a handler's
/// `State<Feed>`, each open stream's) costs one reference count.
#[derive(Clone)]
pub struct Feed(Arc<Parts>);

impl Feed {
    /// The service over these parts.
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

/// Its methods and the streams read the parts as fields (`feed.tail`).
impl Deref for Feed {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// Everything the feed uses, shared.
pub struct Parts {
    /// The settings (the log's retention, stream heartbeat and recheck).
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The server's clock.
    pub clock: Arc<Clock>,
    /// The signing keys in memory: an open stream's token must stay signed by an
    /// accepted key.
    pub keys: Arc<KeyRing>,
    /// The signing keys' life: the tail reloads them when it reads a key event.
    pub signing: keys::Keys,
    /// Verifies the caller's access token.
    pub tokens: Tokens,
    /// Whether the caller's token is still live.
    pub live: Live,
    /// The wake-up signal and the stream and long-poll slots.
    pub events: Arc<EventBus>,
    /// The newest events in memory, shared by every subscriber.
    pub tail: Tail,
    /// This instance's open streams, published for the console (the feed's reach).
    pub reach: super::reach::Reach,
    /// The streams of every event waiting for the next one, written to by one loop.
    pub lane: super::lane::Lane,
}

/// Where a subscriber starts reading.
pub enum Start {
    /// Strictly after this event id.
    After(i64),
    /// The events wanted were pruned by retention, or the cursor is past the newest
    /// event: resynchronise and resume from `next_after`.
    Gone {
        /// The newest id: resume after it once resynchronised.
        next_after: i64,
    },
}

/// The oldest time (Unix seconds) whose events the log still holds at `now`: retention
/// prunes what is older, so a `since` before it may have lost events.
pub fn retained_from(now: i64, retention: Duration) -> i64 {
    now - retention.as_secs() as i64
}

impl Feed {
    /// After `after`; else with the first event at or after `since` (UNIX seconds:
    /// a verifier's cold start); else from now.
    pub async fn feed_start(
        &self,
        after: Option<i64>,
        since: Option<i64>,
    ) -> Result<Start, StoreError> {
        let db = &self.db.read;
        let retained_from = retained_from(self.clock.now(), self.cfg.event_retention);
        let gone = |next_after| Start::Gone { next_after };
        Ok(match (after, since) {
            (None, Some(since)) if since < retained_from => gone(store::events::last_id(db).await?),
            (None, Some(since)) => Start::After(store::events::last_before(db, since).await?),
            (None, None) => Start::After(store::events::last_id(db).await?),
            (Some(after), _) => {
                let newest = store::events::last_id(db).await?;
                // A cursor past the newest event (the log restored from an older
                // backup, or a cursor from another deployment) would silently skip
                // the next events up to it: the subscriber must resynchronise.
                if after > newest || after < store::events::pruned_through(db).await? {
                    gone(newest)
                } else {
                    Start::After(after)
                }
            }
        })
    }

    /// At most `limit` events after `cursor`, of one user (`filter`) or all.
    pub async fn events_after(
        &self,
        cursor: i64,
        filter: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let rows = store::events::after(&self.db.read, cursor, filter, limit).await?;
        Ok(rows.into_iter().map(FeedEvent::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_window_ends_now_and_starts_retention_ago() {
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(retained_from(1_000_000, week), 395_200);
        // The window moves with the clock: a second later, that second is pruned.
        assert_eq!(retained_from(1_000_001, week), 395_201);
    }
}
