//! The audit writer: one task per instance that moves the buffer to the
//! database at most once a second and prunes expired rows.

use std::sync::Arc;
use std::time::Duration;

use super::{AuditStore, AuditTrail};
use crate::oauth::Clock;

/// How often the buffer is written: one write a second per instance,
/// however many tokens it issues (SPEC §10).
pub const WRITE_EVERY: Duration = Duration::from_secs(1);

/// Rows past their retention are pruned this often (and at start-up).
const PRUNE_EVERY_TICKS: u64 = 3600;

/// Runs until the runtime stops: writes whatever the trail holds once a
/// second, keeping a failed batch for the next tick, and prunes rows
/// older than `retention_days`.
pub async fn run_writer(
    trail: Arc<AuditTrail>,
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    retention_days: u32,
) {
    let mut interval = tokio::time::interval(WRITE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    let mut dropped_seen = 0;
    let mut failing = false;
    loop {
        interval.tick().await;
        if ticks % PRUNE_EVERY_TICKS == 0 {
            let before = clock.now() - i64::from(retention_days) * 86_400;
            match store.prune_audit(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned the audit trail"),
                Err(e) => {
                    tracing::debug!(error.cause_chain = ?e, "Failed to prune the audit trail")
                }
            }
        }
        ticks += 1;
        failing = flush(&trail, &*store, failing).await;
        let dropped = trail.stats().dropped;
        if dropped > dropped_seen {
            tracing::warn!(
                dropped = dropped - dropped_seen,
                dropped_total = dropped,
                "audit buffer full: token records dropped from the audit trail"
            );
            dropped_seen = dropped;
        }
    }
}

/// Writes the buffered records in one batch; on failure puts them back.
/// Returns whether the database is failing (logged once per outage).
pub(super) async fn flush(trail: &AuditTrail, store: &dyn AuditStore, failing: bool) -> bool {
    let batch = trail.take();
    if batch.is_empty() {
        return failing;
    }
    match store.insert_audit(&batch).await {
        Ok(()) => {
            trail.wrote(batch.len());
            if failing {
                tracing::info!("audit trail written again");
            }
            false
        }
        Err(e) => {
            if !failing {
                tracing::warn!(error.cause_chain = ?e, records = batch.len(), "Failed to write the audit trail; keeping the records buffered");
            }
            trail.put_back(batch);
            true
        }
    }
}

impl AuditTrail {
    /// Writes what is buffered now (at shutdown).
    pub async fn flush(&self, store: &dyn AuditStore) {
        flush(self, store, false).await;
    }
}
