//! Prometheus metrics on `prometheus-client`: every family is declared once, in
//! [`Metrics::default`], and written by a typed method; call sites name no metric.
//! The exposition is OpenMetrics text (what Prometheus scrapes by preference): a
//! counter family `x` is typed `# TYPE x counter` and its sample is `x_total`, and
//! the text ends with `# EOF`.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod sampled;
mod ssf;

pub use sampled::Sample;
use sampled::Sampled;
pub use ssf::StreamSample;

/// The `Content-Type` of the exposition, OpenMetrics 1.0 text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `client` label's values come from the deployment (client ids): at most this
/// many distinct ones are counted by name, the rest as `other`, so that neither a
/// large deployment nor a stream of new clients makes the series unbounded.
pub const MAX_LABEL_VALUES: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Issued {
    grant: String,
    /// Bounded by [`Metrics::client_label`].
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    endpoint: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// A route is the router's matched path (or `unmatched`): bounded by the routes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Response {
    route: String,
    class: &'static str,
}

/// A latency histogram with [`BUCKETS`] (a plain `fn`, so the family's type is nameable).
fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric family of the server, and the registry that writes them.
pub struct Metrics {
    registry: Registry,
    tokens_issued: Family<Issued, Counter>,
    oauth_errors: Family<ErrorLabels, Counter>,
    throttled: Family<Endpoint, Counter>,
    refresh_grace_replays: Counter,
    refresh_reuse: Counter,
    sessions_revoked: Family<Reason, Counter>,
    connections_refused: Counter,
    connections_refused_per_address: Counter,
    responses: Family<Response, Counter>,
    latency: Family<Route, Histogram, fn() -> Histogram>,
    connections: Gauge,
    sampled: Sampled,
    ssf_streams: ssf::Streams,
    /// Client ids counted by name so far (at most [`MAX_LABEL_VALUES`]).
    clients_seen: Mutex<BTreeSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Self {
            registry: Registry::default(),
            tokens_issued: Family::default(),
            oauth_errors: Family::default(),
            throttled: Family::default(),
            refresh_grace_replays: Counter::default(),
            refresh_reuse: Counter::default(),
            sessions_revoked: Family::default(),
            connections_refused: Counter::default(),
            connections_refused_per_address: Counter::default(),
            responses: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            connections: Gauge::default(),
            sampled: Sampled::default(),
            ssf_streams: ssf::Streams::default(),
            clients_seen: Mutex::default(),
        };
        let mut r = Registry::default();
        r.register(
            "tessera_tokens_issued",
            "Tokens issued, by grant type and client (client ids bounded, the rest `other`)",
            m.tokens_issued.clone(),
        );
        r.register(
            "tessera_oauth_errors",
            "OAuth errors answered, by endpoint and RFC 6749 error code",
            m.oauth_errors.clone(),
        );
        r.register(
            "tessera_throttled",
            "Requests refused by the failure throttle, by endpoint",
            m.throttled.clone(),
        );
        r.register(
            "tessera_refresh_grace_replays",
            "Refresh tokens replayed within the grace window (successor handed out again)",
            m.refresh_grace_replays.clone(),
        );
        r.register(
            "tessera_refresh_reuse",
            "Refresh tokens reused after their grace (family revoked)",
            m.refresh_reuse.clone(),
        );
        r.register(
            "tessera_sessions_revoked",
            "Sessions revoked, by reason",
            m.sessions_revoked.clone(),
        );
        r.register(
            "tessera_connections_refused",
            "Connections over the public port's cap, answered 503 and closed",
            m.connections_refused.clone(),
        );
        r.register(
            "tessera_connections_refused_per_address",
            "Connections over their address's share of the public port, answered 429 and closed",
            m.connections_refused_per_address.clone(),
        );
        r.register(
            "tessera_http_responses",
            "Responses, by route and status class",
            m.responses.clone(),
        );
        r.register(
            "tessera_http_request_duration_seconds",
            "Request latency, by route",
            m.latency.clone(),
        );
        m.sampled.register(&mut r);
        m.ssf_streams.register(&mut r);
        r.register(
            "tessera_http_connections",
            "open connections on the public port",
            m.connections.clone(),
        );
        Self { registry: r, ..m }
    }
}

impl Metrics {
    /// The `client` label for `client`: itself while fewer than
    /// [`MAX_LABEL_VALUES`] client ids were seen, `other` after.
    fn client_label(&self, client: &str) -> String {
        let mut seen = self.clients_seen.lock().expect("metrics");
        if seen.contains(client) {
            client.to_string()
        } else if seen.len() < MAX_LABEL_VALUES {
            seen.insert(client.to_string());
            client.to_string()
        } else {
            "other".to_string()
        }
    }

    /// A token issued, by grant type and client (the client label is bounded).
    pub fn token_issued(&self, grant: &str, client: &str) {
        let labels = Issued {
            grant: grant.to_string(),
            client: self.client_label(client),
        };
        self.tokens_issued.get_or_create(&labels).inc();
    }

    /// An OAuth error answered, by endpoint and RFC 6749 code.
    pub fn oauth_error(&self, endpoint: &str, code: &str) {
        let labels = ErrorLabels {
            endpoint: endpoint.to_string(),
            error: code.to_string(),
        };
        self.oauth_errors.get_or_create(&labels).inc();
    }

    /// A request refused by the failure throttle.
    pub fn throttled(&self, endpoint: &str) {
        let labels = Endpoint {
            endpoint: endpoint.to_string(),
        };
        self.throttled.get_or_create(&labels).inc();
    }

    /// A refresh token replayed within the grace window (its successor handed out again).
    pub fn refresh_grace_replay(&self) {
        self.refresh_grace_replays.inc();
    }

    /// A refresh token reused after its grace: its family is revoked.
    pub fn refresh_reuse(&self) {
        self.refresh_reuse.inc();
    }

    /// A session revoked, by reason.
    pub fn session_revoked(&self, reason: &str) {
        let labels = Reason {
            reason: reason.to_string(),
        };
        self.sessions_revoked.get_or_create(&labels).inc();
    }

    /// A connection over the public port's cap, answered 503 and closed.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// A connection over its address's share of the public port, answered 429 and closed.
    pub fn connection_refused_per_address(&self) {
        self.connections_refused_per_address.inc();
    }

    /// A connection opened on the public port; it counts until the guard drops.
    pub fn connection(&self) -> ConnectionGuard<'_> {
        self.connections.inc();
        ConnectionGuard(self)
    }

    /// A response sent: counted by route and status class, its latency observed.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        let class = match status {
            200..=299 => "2xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "other",
        };
        let response = Response {
            route: route.to_string(),
            class,
        };
        self.responses.get_or_create(&response).inc();
        let route = Route {
            route: route.to_string(),
        };
        self.latency
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the Shared Signals streams' figures (before a scrape).
    pub fn set_ssf_streams(&self, streams: &[StreamSample]) {
        self.ssf_streams.set(streams);
    }

    /// The exposition after setting the scrape-time gauges from `sample`.
    pub fn scrape(&self, sample: &Sample) -> String {
        self.sampled.set(sample);
        self.render()
    }

    /// The exposition as it stands (the scrape-time gauges as last set).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts one open connection (see [`Metrics::connection`]).
pub struct ConnectionGuard<'a>(&'a Metrics);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.token_issued("password", "web");
        m.token_issued("password", "web");
        m.observe("/token", 200, Duration::from_millis(2));
        let text = m.scrape(&Sample {
            sse_subscribers: 3,
            ..Sample::default()
        });
        for line in [
            "# TYPE tessera_tokens_issued counter\n",
            "\ntessera_tokens_issued_total{grant=\"password\",client=\"web\"} 2\n",
            "# TYPE tessera_http_request_duration_seconds histogram\n",
            "\ntessera_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/token\"} 0\n",
            "\ntessera_http_request_duration_seconds_bucket{le=\"0.0025\",route=\"/token\"} 1\n",
            "\ntessera_http_request_duration_seconds_bucket{le=\"0.001\",route=\"/token\"} 0\n",
            "\ntessera_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/token\"} 1\n",
            "\ntessera_http_request_duration_seconds_count{route=\"/token\"} 1\n",
            "\ntessera_http_responses_total{route=\"/token\",class=\"2xx\"} 1\n",
            "\ntessera_sse_subscribers 3\n",
            "\ntessera_http_connections 0\n",
            "\ntessera_refresh_reuse_total 0\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn the_connection_gauge_follows_the_guards() {
        let m = Metrics::default();
        let a = m.connection();
        let b = m.connection();
        drop(a);
        assert!(m.render().contains("\ntessera_http_connections 1\n"));
        drop(b);
        assert!(m.render().contains("\ntessera_http_connections 0\n"));
    }

    #[test]
    fn client_labels_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_LABEL_VALUES + 50 {
            m.token_issued("password", &format!("c{i}"));
        }
        m.token_issued("password", "c0");
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("tessera_tokens_issued_total{"))
            .count();
        assert_eq!(series, MAX_LABEL_VALUES + 1, "{text}");
        assert!(
            text.contains("tessera_tokens_issued_total{grant=\"password\",client=\"other\"} 50"),
            "{text}"
        );
        assert!(
            text.contains("tessera_tokens_issued_total{grant=\"password\",client=\"c0\"} 2"),
            "{text}"
        );
    }
}
