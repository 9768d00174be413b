//! Prometheus metrics, in text format (0.0.4): counters and latency histograms.
//! Every family is declared once, here, as a typed method; call sites name no
//! metric. Hand-written rather than `prometheus-client`: that crate speaks
//! OpenMetrics (`# TYPE x counter` for series `x_total`, a `# EOF` line), which
//! would change what scrapers and the tests read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Labels whose values come from the deployment (client ids): each has at most
/// [`MAX_LABEL_VALUES`] distinct values, the rest are counted as `other`, so that
/// neither a large deployment nor a stream of new clients makes the series unbounded.
const BOUNDED_LABELS: [&str; 1] = ["client"];
pub const MAX_LABEL_VALUES: usize = 100;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Values seen so far of each bounded label.
    seen: Mutex<BTreeMap<&'static str, BTreeSet<String>>>,
    connections: AtomicUsize,
}

/// Label values are ours or registered names; quote-escape them anyway.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// A bounded label's value as counted: itself while fewer than
    /// [`MAX_LABEL_VALUES`] values were seen, `other` after.
    fn bounded<'a>(&self, key: &str, value: &'a str) -> &'a str {
        let Some(label) = BOUNDED_LABELS.iter().find(|l| **l == key) else {
            return value;
        };
        let mut seen = self.seen.lock().expect("metrics");
        let values = seen.entry(label).or_default();
        if values.contains(value) {
            value
        } else if values.len() < MAX_LABEL_VALUES {
            values.insert(value.to_string());
            value
        } else {
            "other"
        }
    }

    /// A token issued, by grant type and client (the client label is bounded).
    pub fn token_issued(&self, grant: &str, client: &str) {
        self.inc(
            "tessera_tokens_issued_total",
            &[("grant", grant), ("client", client)],
        );
    }

    /// An OAuth error answered, by endpoint and RFC 6749 code.
    pub fn oauth_error(&self, endpoint: &str, code: &str) {
        self.inc(
            "tessera_oauth_errors_total",
            &[("endpoint", endpoint), ("error", code)],
        );
    }

    /// A request refused by the failure throttle.
    pub fn throttled(&self, endpoint: &str) {
        self.inc("tessera_throttled_total", &[("endpoint", endpoint)]);
    }

    /// A refresh token replayed within the grace window (its successor handed out again).
    pub fn refresh_grace_replay(&self) {
        self.inc("tessera_refresh_grace_replays_total", &[]);
    }

    /// A refresh token reused after its grace: its family is revoked.
    pub fn refresh_reuse(&self) {
        self.inc("tessera_refresh_reuse_total", &[]);
    }

    /// A session revoked, by reason.
    pub fn session_revoked(&self, reason: &str) {
        self.inc("tessera_sessions_revoked_total", &[("reason", reason)]);
    }

    /// A connection over the public port's cap, answered 503 and closed.
    pub fn connection_refused(&self) {
        self.inc("tessera_connections_refused_total", &[]);
    }

    /// Adds one to `name{labels}`.
    fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        let mut key = name.to_string();
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(self.bounded(k, v))))
                .collect();
            key = format!("{name}{{{}}}", inner.join(","));
        }
        *self
            .counters
            .lock()
            .expect("metrics")
            .entry(key)
            .or_default() += 1;
    }

    /// A connection opened on the public port; it counts until the guard drops.
    pub fn connection(&self) -> ConnectionGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        let class = match status {
            200..=299 => "2xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "other",
        };
        self.inc(
            "tessera_http_responses_total",
            &[("route", route), ("class", class)],
        );
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().expect("metrics");
        let h = latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The text exposition; `gauges` are sampled by the caller at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().expect("metrics");
        let mut last_name = "";
        for (series, value) in counters.iter() {
            let name = series.split('{').next().unwrap_or(series);
            if name != last_name {
                let _ = writeln!(out, "# TYPE {name} counter");
                last_name = name;
            }
            let _ = writeln!(out, "{series} {value}");
        }
        drop(counters);
        let _ = writeln!(
            out,
            "# TYPE tessera_http_request_duration_seconds histogram"
        );
        for (route, h) in self.latency.lock().expect("metrics").iter() {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tessera_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "tessera_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "tessera_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "tessera_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// Counts one open connection (see [`Metrics::connection`]).
pub struct ConnectionGuard<'a>(&'a Metrics);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.inc(
            "tessera_tokens_issued_total",
            &[("grant", "password"), ("client", "web")],
        );
        m.inc(
            "tessera_tokens_issued_total",
            &[("grant", "password"), ("client", "web")],
        );
        m.observe("/token", 200, Duration::from_millis(2));
        let text = m.render(&[("tessera_sse_subscribers", "open SSE streams", 3.0)]);
        assert!(
            text.contains("tessera_tokens_issued_total{grant=\"password\",client=\"web\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_http_request_duration_seconds_bucket{route=\"/token\",le=\"0.0025\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_http_request_duration_seconds_bucket{route=\"/token\",le=\"0.001\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains("tessera_sse_subscribers 3"), "{text}");
    }

    #[test]
    fn client_labels_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_LABEL_VALUES + 50 {
            m.inc(
                "tessera_tokens_issued_total",
                &[("grant", "password"), ("client", &format!("c{i}"))],
            );
        }
        m.inc(
            "tessera_tokens_issued_total",
            &[("grant", "password"), ("client", "c0")],
        );
        let text = m.render(&[]);
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
