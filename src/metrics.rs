//! Prometheus metrics of this process (OpenMetrics text at `/metrics`).
//! Names carry the `sundial_` prefix and their unit.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: String,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    /// Records ingested by this process's projector, if any.
    pub records: Counter,
    /// Dead letters seen by this process's projector.
    pub dead_letters: Counter,
    /// Duplicates seen by this process's projector.
    pub duplicates: Counter,
    /// Log sequence of the last record applied.
    pub log_offset: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sundial");
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let records = Counter::default();
        registry.register("records", "Records ingested", records.clone());
        let dead_letters = Counter::default();
        registry.register(
            "dead_letters",
            "Records rejected as dead letters",
            dead_letters.clone(),
        );
        let duplicates = Counter::default();
        registry.register(
            "duplicates",
            "Producer retries recognised",
            duplicates.clone(),
        );
        let log_offset = Gauge::default();
        registry.register(
            "log_offset",
            "Log sequence of the last record applied",
            log_offset.clone(),
        );
        Metrics {
            registry,
            requests,
            records,
            dead_letters,
            duplicates,
            log_offset,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
