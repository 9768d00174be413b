//! The gauges set from the running server at each scrape ([`Sample`]), registered once.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The gauges read from the running server at each scrape (see [`super::Metrics::scrape`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Sample {
    /// Open SSE streams.
    pub sse_subscribers: usize,
    /// Reader pool connections.
    pub read_pool_connections: u32,
    /// Idle reader pool connections.
    pub read_pool_idle: usize,
    /// Keys in the JWKS.
    pub signing_keys_published: usize,
    /// Database reads made by the event feed's in-memory tail, since start.
    pub feed_reads: u64,
    /// Database reads made by subscribers behind the tail, since start.
    pub feed_catch_up_reads: u64,
    /// Users with an open stream or long-poll on this instance.
    pub feed_users_watched: usize,
    /// Streams waiting on the feed's lane now.
    pub feed_lane_parked: usize,
    /// Batches the lane wrote whole to a waiting stream, since start.
    pub feed_lane_writes: u64,
    /// Streams the lane handed back to their own task, since start.
    pub feed_lane_handbacks: u64,
    /// Sign-ins and client authentications waiting for a throttle slot.
    pub throttle_waiting: usize,
    /// Keys (usernames, devices, addresses, clients) the throttles track.
    pub throttle_keys: usize,
}

/// The gauges that [`Sample`] sets, registered once.
#[derive(Default)]
pub(super) struct Sampled {
    sse_subscribers: Gauge,
    read_pool_connections: Gauge,
    read_pool_idle: Gauge,
    signing_keys_published: Gauge,
    feed_reads: Gauge,
    feed_catch_up_reads: Gauge,
    feed_users_watched: Gauge,
    feed_lane_parked: Gauge,
    feed_lane_writes: Gauge,
    feed_lane_handbacks: Gauge,
    throttle_waiting: Gauge,
    throttle_keys: Gauge,
}

impl Sampled {
    /// Registers every sampled gauge in `r`, in the exposition's order.
    pub(super) fn register(&self, r: &mut Registry) {
        let gauges = [
            (
                "tessera_sse_subscribers",
                "open SSE streams",
                &self.sse_subscribers,
            ),
            (
                "tessera_db_read_pool_connections",
                "reader pool connections",
                &self.read_pool_connections,
            ),
            (
                "tessera_db_read_pool_idle",
                "idle reader pool connections",
                &self.read_pool_idle,
            ),
            (
                "tessera_signing_keys_published",
                "keys in the JWKS",
                &self.signing_keys_published,
            ),
            (
                "tessera_event_feed_reads",
                "database reads made by the event feed's in-memory tail (one per wake-up), since start",
                &self.feed_reads,
            ),
            (
                "tessera_event_feed_catch_up_reads",
                "database reads made by subscribers behind the in-memory tail, since start",
                &self.feed_catch_up_reads,
            ),
            (
                "tessera_event_feed_users_watched",
                "users with an open stream or long-poll on this instance",
                &self.feed_users_watched,
            ),
            (
                "tessera_event_feed_lane_parked",
                "streams of every event waiting on the feed's lane for the next event",
                &self.feed_lane_parked,
            ),
            (
                "tessera_event_feed_lane_writes",
                "batches of new events the lane wrote whole to a waiting stream's socket, since start",
                &self.feed_lane_writes,
            ),
            (
                "tessera_event_feed_lane_handbacks",
                "streams the lane handed back to their own task (a socket that took less than a batch, an expired token), since start",
                &self.feed_lane_handbacks,
            ),
            (
                "tessera_throttle_waiting",
                "sign-ins and client authentications waiting for a throttle slot",
                &self.throttle_waiting,
            ),
            (
                "tessera_throttle_keys",
                "keys the failure throttles track (usernames, devices, addresses, clients)",
                &self.throttle_keys,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
    }

    /// Sets every gauge from `sample`.
    pub(super) fn set(&self, sample: &Sample) {
        self.sse_subscribers
            .set(gauge_value(sample.sse_subscribers));
        self.read_pool_connections
            .set(gauge_value(sample.read_pool_connections));
        self.read_pool_idle.set(gauge_value(sample.read_pool_idle));
        self.signing_keys_published
            .set(gauge_value(sample.signing_keys_published));
        self.feed_reads.set(gauge_value(sample.feed_reads));
        self.feed_catch_up_reads
            .set(gauge_value(sample.feed_catch_up_reads));
        self.feed_users_watched
            .set(gauge_value(sample.feed_users_watched));
        self.feed_lane_parked
            .set(gauge_value(sample.feed_lane_parked));
        self.feed_lane_writes
            .set(gauge_value(sample.feed_lane_writes));
        self.feed_lane_handbacks
            .set(gauge_value(sample.feed_lane_handbacks));
        self.throttle_waiting
            .set(gauge_value(sample.throttle_waiting));
        self.throttle_keys.set(gauge_value(sample.throttle_keys));
    }
}

/// A count as a gauge value (saturating: no count of ours nears `i64::MAX`).
fn gauge_value(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}
