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
                    let Some(last) = events.last() else {
                        cursor = through;
                        break;
                    };
                    let mut wire = Vec::new();
                    for e in &events {
                        extend_chunk(&mut wire, &frame(e));
                    }
                    let batch = Arc::new(Batch {
                        from: cursor,
                        through,
                        last_id: last.id,
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
