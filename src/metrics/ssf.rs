//! The Shared Signals streams' delivery figures, set at each scrape from the database:
//! the counts live there (durable, shared by every instance), not in one process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
    client: String,
}

/// One stream's figures at a scrape.
#[derive(Debug, Clone, Default)]
pub struct StreamSample {
    /// The `stream_id`.
    pub stream: String,
    /// The receiver's client id.
    pub client: String,
    /// SETs the receiver accepted since the stream was created.
    pub delivered: i64,
    /// Failed attempts and rejected SETs since the stream was created.
    pub failed: i64,
    /// SETs waiting for the receiver.
    pub held: i64,
    /// Events of the log the stream has not read yet.
    pub lag: i64,
}

/// The per-stream gauge families.
#[derive(Default)]
pub(super) struct Streams {
    delivered: Family<StreamLabels, Gauge>,
    failed: Family<StreamLabels, Gauge>,
    held: Family<StreamLabels, Gauge>,
    lag: Family<StreamLabels, Gauge>,
}

impl Streams {
    pub(super) fn register(&self, r: &mut Registry) {
        let families = [
            (
                "tessera_ssf_delivered",
                "SETs each Shared Signals stream's receiver accepted since the stream was created",
                &self.delivered,
            ),
            (
                "tessera_ssf_failed",
                "failed deliveries and rejected SETs of each Shared Signals stream since it was created",
                &self.failed,
            ),
            (
                "tessera_ssf_held",
                "SETs each Shared Signals stream holds for its receiver",
                &self.held,
            ),
            (
                "tessera_ssf_lag",
                "events of the log each Shared Signals stream has not read yet",
                &self.lag,
            ),
        ];
        for (name, help, family) in families {
            r.register(name, help, family.clone());
        }
    }

    /// Replaces every stream's figures (a deleted stream disappears).
    pub(super) fn set(&self, samples: &[StreamSample]) {
        for family in [&self.delivered, &self.failed, &self.held, &self.lag] {
            family.clear();
        }
        for s in samples {
            let labels = StreamLabels {
                stream: s.stream.clone(),
                client: s.client.clone(),
            };
            self.delivered.get_or_create(&labels).set(s.delivered);
            self.failed.get_or_create(&labels).set(s.failed);
            self.held.get_or_create(&labels).set(s.held);
            self.lag.get_or_create(&labels).set(s.lag);
        }
    }
}
