//! The loop that writes each new batch of events to the streams parked on the feed's
//! lane ([`crate::domain::lane`]): one per listener, for as long as it serves.

use std::sync::Arc;

use bytes::Bytes;

use crate::domain::feed::Feed;
use crate::domain::lane::{Batch, Lane, SHARDS};
use crate::domain::tail::Take;
use crate::http::stream_conn::chunk::extend_chunk;

use super::BATCH;
use super::stream::frame;

/// The most bytes one batch carries (unless one event alone is longer): what a socket
/// does not take of a batch is kept for its stream until written, and a burst of large
/// events must not become a large buffer per slow stream.
const MAX_WIRE: usize = 16 * 1024;

/// Streams written to between two turns given back to the scheduler: a batch to
/// thousands of streams shares its worker with the requests it serves.
const WALK: usize = 64;

/// Writes new events to the parked streams until the feed closes.
pub(in crate::http) async fn run(feed: Feed) {
    let mut wake = feed.tail.watch_all();
    let mut keys = feed.tail.keys_seen();
    // Read before streams may park: each parks at the tail's newest id, at or after this.
    let mut cursor = feed.tail.last();
    let _running = Running::start(&feed.lane);
    // One walker per worker thread, each with its share of the lane's shards.
    let walkers = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .clamp(1, SHARDS);
    loop {
        wake.borrow_and_update();
        if feed.tail.is_closing() {
            return;
        }
        // A key event: every stream checks its token's key, on its own task.
        let keys_now = feed.tail.keys_seen();
        if keys_now != keys {
            keys = keys_now;
            feed.lane.release_all();
        }
        loop {
            match feed.tail.after(cursor, None, BATCH) {
                Take::Events { events, through } => {
                    if events.is_empty() {
                        cursor = through;
                        break;
                    }
                    let (wire, last_id) = wire_of(&events);
                    // Cut short, the batch ends at its last event; else at the tail's `through`.
                    let through = if last_id == events[events.len() - 1].id {
                        through
                    } else {
                        last_id
                    };
                    let batch = Arc::new(Batch {
                        from: cursor,
                        through,
                        last_id,
                        wire: Bytes::from(wire),
                    });
                    walk(&feed, batch, walkers).await;
                    cursor = through;
                }
                // Fell behind the tail: the streams catch up on their own tasks.
                Take::Behind => {
                    cursor = feed.tail.last();
                    feed.lane.release_all();
                }
            }
        }
        if wake.changed().await.is_err() {
            return;
        }
    }
}

/// The wire form of the first of `events` (at least one), framed as chunks, up to
/// [`MAX_WIRE`] bytes; and the id of the last one it holds.
fn wire_of(events: &[Arc<crate::domain::events::FeedEvent>]) -> (Vec<u8>, i64) {
    let mut wire = Vec::new();
    let mut last_id = events[0].id;
    for e in events {
        let frame = frame(e);
        if !wire.is_empty() && wire.len() + frame.len() > MAX_WIRE {
            break;
        }
        extend_chunk(&mut wire, &frame);
        last_id = e.id;
    }
    (wire, last_id)
}

/// One batch to every parked stream: `walkers` at once, each through its shards
/// `WALK` streams at a time.
async fn walk(feed: &Feed, batch: Arc<Batch>, walkers: usize) {
    let others: Vec<_> = (1..walkers)
        .map(|w| tokio::spawn(walk_shards(feed.clone(), batch.clone(), w, walkers)))
        .collect();
    walk_shards(feed.clone(), batch, 0, walkers).await;
    for other in others {
        // A walker that panicked left its streams parked: hand them back.
        if other.await.is_err() {
            feed.lane.release_all();
        }
    }
}

/// Walks shards `first`, `first + step`, ...
async fn walk_shards(feed: Feed, batch: Arc<Batch>, first: usize, step: usize) {
    for shard in (first..SHARDS).step_by(step) {
        let slots = feed.lane.slots(shard);
        let mut at = 0;
        while at < slots {
            let end = (at + WALK).min(slots);
            let now = tokio::time::Instant::now();
            feed.lane
                .deliver(shard, at..end, &batch, now, feed.clock.wall());
            at = end;
            tokio::task::yield_now().await;
        }
    }
}

/// The loop's registration: streams park while it runs, and are handed back once it
/// stops, however it stops (returned, or its task aborted).
struct Running<'a>(&'a Lane);

impl<'a> Running<'a> {
    fn start(lane: &'a Lane) -> Self {
        lane.start();
        Self(lane)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{EventKind, FeedEvent, SecurityEvent};

    /// An event whose frame is about `roles` × 100 bytes.
    fn event(id: i64, roles: usize) -> Arc<FeedEvent> {
        Arc::new(
            SecurityEvent {
                id,
                kind: EventKind::RolesChanged,
                sub: Some("u".into()),
                sid: None,
                ver: Some(1),
                roles: Some((0..roles).map(|r| format!("{r:097}")).collect()),
                reason: None,
                kid: None,
                at: "2026-12-06T00:00:00Z".into(),
            }
            .into(),
        )
    }

    #[test]
    fn a_batch_stops_at_its_size_unless_one_event_is_longer() {
        // About 6 KiB each: two fit in 16 KiB, the third starts the next batch.
        let events = [event(1, 60), event(2, 60), event(3, 60)];
        let (wire, last) = wire_of(&events);
        assert_eq!(last, 2);
        let mut want = crate::http::stream_conn::chunk::chunk(&frame(&events[0]));
        want.extend(crate::http::stream_conn::chunk::chunk(&frame(&events[1])));
        assert_eq!(wire, want);
        assert!(wire.len() <= MAX_WIRE);
        // One event longer than the limit goes alone, whole.
        let big = [event(4, 200), event(5, 1)];
        let (wire, last) = wire_of(&big);
        assert_eq!(last, 4);
        assert_eq!(
            wire,
            crate::http::stream_conn::chunk::chunk(&frame(&big[0]))
        );
        // Small events: all of them.
        let small: Vec<_> = (6..=9).map(|id| event(id, 1)).collect();
        assert_eq!(wire_of(&small).1, 9);
    }
}
