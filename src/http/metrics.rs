//! Prometheus metrics for one server instance: tokens issued, failures by
//! error code, and token latency. A registry per instance (no global
//! recorder), so tests can run several servers in one process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialectLabel {
    dialect: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    dialect: String,
    error: String,
}

/// The instance's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    issued: Family<DialectLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ficha");
        let issued = Family::<DialectLabel, Counter>::default();
        let failures = Family::<FailureLabel, Counter>::default();
        // 50 µs to ~3 s: a cached token is well under a millisecond, a cold
        // one costs an argon2 verification (~25 ms).
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.000_05, 2.0, 16,
        ));
        registry.register("tokens_issued", "Access tokens issued", issued.clone());
        registry.register(
            "token_failures",
            "Token requests refused, by error code",
            failures.clone(),
        );
        registry.register(
            "token_request_duration_seconds",
            "Token endpoint latency",
            latency.clone(),
        );
        Metrics {
            registry,
            issued,
            failures,
            latency,
        }
    }
}

impl Metrics {
    /// Counts an issued token.
    pub fn issued(&self, dialect: &'static str, seconds: f64) {
        // A static label: no allocation per token.
        self.issued.get_or_create(&DialectLabel { dialect }).inc();
        self.latency.observe(seconds);
    }

    /// Counts a refused request.
    pub fn failed(&self, dialect: &str, error: &str, seconds: f64) {
        self.failures
            .get_or_create(&FailureLabel {
                dialect: dialect.to_owned(),
                error: error.to_owned(),
            })
            .inc();
        self.latency.observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
