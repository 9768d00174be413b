//! The event feed's reads: where a subscriber starts, and the events after a cursor.

use super::Core;
use super::events::FeedEvent;
use crate::store::{self, StoreError};

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

impl Core {
    /// After `after`; else with the first event at or after `since` (UNIX seconds:
    /// a verifier's cold start); else from now.
    pub async fn feed_start(
        &self,
        after: Option<i64>,
        since: Option<i64>,
    ) -> Result<Start, StoreError> {
        let db = &self.db.read;
        let retained_from = store::now() - self.cfg.event_retention.as_secs() as i64;
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
