//! Prometheus metrics for one server instance: tokens issued, failures by
//! error code, and token latency. A registry per instance (no global
//! recorder), so tests can run several servers in one process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::audit::AuditStats;
use crate::oauth::AuthStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialectLabel {
    dialect: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    dialect: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The instance's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    issued: Family<DialectLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    latency: Histogram,
    tls_reloads: Family<ResultLabel, Counter>,
    auth: AuthMetrics,
    audit: AuditMetrics,
}

/// The audit trail's counters, copied from [`AuditStats`] when scraped.
#[derive(Debug, Default)]
struct AuditMetrics {
    dropped: Counter,
    writes: Counter,
    written: Counter,
}

impl AuditMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "audit_dropped",
            "Issued tokens left out of the audit trail because its buffer was full",
            self.dropped.clone(),
        );
        registry.register(
            "audit_writes",
            "Batches written to the audit trail (at most one a second)",
            self.writes.clone(),
        );
        registry.register(
            "audit_records",
            "Issued tokens written to the audit trail",
            self.written.clone(),
        );
    }

    fn set(&self, stats: AuditStats) {
        use std::sync::atomic::Ordering::Relaxed;
        self.dropped.inner().store(stats.dropped, Relaxed);
        self.writes.inner().store(stats.writes, Relaxed);
        self.written.inner().store(stats.written, Relaxed);
    }
}

/// The authenticator's cold-path counters, copied from
/// [`AuthStats`] when the metrics are scraped.
#[derive(Debug, Default)]
struct AuthMetrics {
    hash_runs: Counter,
    verifications: Counter,
    rejected_without_hashing: Counter,
    throttled: Counter,
    queued: Gauge,
    queue_peak: Gauge,
}

impl AuthMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "hash_runs",
            "argon2 passes run, dummy passes included",
            self.hash_runs.clone(),
        );
        registry.register(
            "hash_verifications",
            "Secret verifications queued for hashing",
            self.verifications.clone(),
        );
        registry.register(
            "auth_rejected_without_hashing",
            "Presented secrets refused as already found wrong, without hashing",
            self.rejected_without_hashing.clone(),
        );
        registry.register(
            "auth_throttled",
            "Authentications refused by the failure throttles",
            self.throttled.clone(),
        );
        registry.register(
            "hash_queue_depth",
            "Verifications waiting for a hashing thread",
            self.queued.clone(),
        );
        registry.register(
            "hash_queue_peak",
            "The most verifications ever waiting at once",
            self.queue_peak.clone(),
        );
    }

    fn set(&self, stats: AuthStats) {
        use std::sync::atomic::Ordering::Relaxed;
        self.hash_runs.inner().store(stats.hash_runs, Relaxed);
        self.verifications
            .inner()
            .store(stats.verifications, Relaxed);
        self.rejected_without_hashing
            .inner()
            .store(stats.rejected_without_hashing, Relaxed);
        self.throttled.inner().store(stats.throttled, Relaxed);
        self.queued
            .set(i64::try_from(stats.queued).unwrap_or(i64::MAX));
        self.queue_peak
            .set(i64::try_from(stats.queue_peak).unwrap_or(i64::MAX));
    }
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
        let tls_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "tls_reloads",
            "TLS certificate reloads on SIGHUP, by result (ok, failed)",
            tls_reloads.clone(),
        );
        let auth = AuthMetrics::default();
        auth.register(&mut registry);
        let audit = AuditMetrics::default();
        audit.register(&mut registry);
        Metrics {
            registry,
            issued,
            failures,
            latency,
            tls_reloads,
            auth,
            audit,
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

    /// Counts a TLS reload; a failed one left the previous pair served.
    pub fn tls_reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.tls_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// The OpenMetrics text exposition, with the authenticator's and the
    /// audit trail's counters as of now.
    pub fn render(&self, auth: AuthStats, audit: AuditStats) -> String {
        self.auth.set(auth);
        self.audit.set(audit);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
