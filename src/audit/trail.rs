//! The bounded buffer between the token endpoint and the audit writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use std::net::IpAddr;

use super::{AuditBatch, EntryFields};

/// Records the buffer holds at most (64 bytes each, and their grants once):
/// a second or two of a busy instance's tokens, or a longer database outage
/// of a quieter one.
pub const DEFAULT_AUDIT_CAPACITY: usize = 65_536;

/// Counters the metrics endpoint shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records dropped because the buffer was full.
    pub dropped: u64,
    /// Batches written to the database.
    pub writes: u64,
    /// Records written to the database.
    pub written: u64,
}

/// The bounded buffer of records not yet written; `None` capacity means
/// the trail is off (`audit_retention_days = 0`).
#[derive(Debug)]
pub struct AuditTrail {
    buffer: Mutex<AuditBatch>,
    capacity: usize,
    enabled: bool,
    dropped: AtomicU64,
    writes: AtomicU64,
    written: AtomicU64,
}

impl AuditTrail {
    /// A trail buffering at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        AuditTrail {
            buffer: Mutex::new(AuditBatch::default()),
            capacity: capacity.max(1),
            enabled: true,
            dropped: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// A trail that records nothing.
    pub fn disabled() -> Self {
        AuditTrail {
            enabled: false,
            ..Self::new(1)
        }
    }

    /// Whether records are kept at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Buffers a record, or drops and counts it when the buffer is full.
    /// Never waits for the database: this runs on the request path.
    pub fn record(&self, fields: EntryFields<'_>, iat: i64, exp: i64, address: Option<IpAddr>) {
        if !self.enabled {
            return;
        }
        let mut buf = self.lock();
        if buf.len() >= self.capacity {
            drop(buf);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            buf.push(fields, iat, exp, address);
        }
    }

    /// Takes everything buffered, leaving room for as many: the next
    /// second is likely as busy, and growing by doubling would copy the
    /// buffer a dozen times a second.
    pub(super) fn take(&self) -> AuditBatch {
        let mut buf = self.lock();
        let room = buf.len();
        std::mem::replace(&mut *buf, AuditBatch::with_capacity(room))
    }

    /// Puts back a batch that could not be written, ahead of what arrived
    /// since; what no longer fits is dropped and counted.
    pub(super) fn put_back(&self, batch: AuditBatch) {
        let mut buf = self.lock();
        let newer = std::mem::take(&mut *buf);
        let mut all = batch;
        let over = all.append(newer, self.capacity);
        *buf = all;
        drop(buf);
        self.dropped.fetch_add(over as u64, Ordering::Relaxed);
    }

    /// Counts a batch written.
    pub(super) fn wrote(&self, records: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.written.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// The counters as of now.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            dropped: self.dropped.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuditBatch> {
        // A panic while holding the lock leaves a valid queue behind.
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(trail: &AuditTrail, n: i64) {
        let jti = format!("j{n}");
        let fields = EntryFields {
            jti: &jti,
            client_id: "c",
            subject: "c",
            scope: "",
            dialect: "payvalida",
            kid: "k",
        };
        trail.record(fields, n, n + 1, None);
    }

    fn jtis(batch: &AuditBatch) -> Vec<&str> {
        batch.entries().iter().map(|e| e.jti()).collect()
    }

    #[test]
    fn a_full_buffer_drops_and_counts_new_records() {
        let trail = AuditTrail::new(2);
        for n in 0..5 {
            rec(&trail, n);
        }
        assert_eq!(trail.stats().dropped, 3);
        let batch = trail.take();
        assert_eq!(jtis(&batch), ["j0", "j1"]);
        // A failed batch goes back ahead of newer records; the excess is dropped.
        rec(&trail, 9);
        trail.put_back(batch);
        assert_eq!(jtis(&trail.take()), ["j0", "j1"]);
        assert_eq!(trail.stats().dropped, 4);
    }

    #[test]
    fn a_disabled_trail_keeps_nothing() {
        let trail = AuditTrail::disabled();
        rec(&trail, 1);
        assert!(trail.take().is_empty());
        assert_eq!(trail.stats().dropped, 0);
    }
}
