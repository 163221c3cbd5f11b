//! The in-memory denylist of revoked access tokens.
//!
//! Tokens are self-contained, so verifying one needs no database, except to
//! learn whether it was revoked (RFC 7009). Each instance keeps the `jti`s
//! of every revoked, unexpired token in memory: loaded at start-up, added
//! to at once by a local revocation, and refreshed by the change-log poller
//! when another instance revokes one. A lookup is a read lock and a hash
//! probe; the database is never asked on the request path.
//!
//! The set is trusted only while the poller keeps it fresh. After
//! `max_staleness_secs` without a successful poll the instance can no
//! longer promise that a token revoked elsewhere is refused within that
//! bound, so [`Denylist::check`] fails (callers answer 503) rather than
//! accept a possibly revoked token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

/// Denylist entries are kept this long after their token's `exp` before
/// they are pruned, so that an instance whose clock runs behind the pruning
/// one's still finds them while the token is live by its own clock.
pub const REVOCATION_PRUNE_MARGIN_SECS: i64 = 300;

/// Why a denylist lookup gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the revocation list has not been refreshed recently")]
pub struct Stale;

/// The revoked `jti`s with their tokens' `exp`; see the module documentation.
#[derive(Debug)]
pub struct Denylist {
    entries: RwLock<HashMap<String, i64>>,
    fresh_until: AtomicI64,
    max_staleness_secs: i64,
}

impl Denylist {
    /// An empty list, untrusted until the first [`Denylist::refresh`] or
    /// [`Denylist::mark_fresh`].
    pub fn new(max_staleness_secs: i64) -> Self {
        Denylist {
            entries: RwLock::new(HashMap::new()),
            fresh_until: AtomicI64::new(i64::MIN),
            max_staleness_secs,
        }
    }

    /// Whether `jti` is revoked; `Err(Stale)` when the list has not been
    /// refreshed within the staleness bound at `now`.
    pub fn check(&self, jti: &str, now: i64) -> Result<bool, Stale> {
        if now >= self.fresh_until.load(Ordering::SeqCst) {
            return Err(Stale);
        }
        Ok(self.contains(jti))
    }

    /// Whether `jti` is in the list, fresh or not.
    pub fn contains(&self, jti: &str) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(jti)
    }

    /// Adds a revocation made by this instance.
    pub fn insert(&self, jti: String, exp: i64) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(jti, exp);
    }

    /// Adds the store's unexpired revocations, read at `now`, and marks the
    /// list fresh. It adds rather than replaces: a revocation is never
    /// undone, and a local one made while the store was being read must
    /// not be dropped; expired entries go through [`Denylist::prune`].
    pub fn refresh(&self, entries: Vec<(String, i64)>, now: i64) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(entries);
        self.mark_fresh(now);
    }

    /// Records a successful change poll at `now`.
    pub fn mark_fresh(&self, now: i64) {
        self.fresh_until.store(
            now.saturating_add(self.max_staleness_secs),
            Ordering::SeqCst,
        );
    }

    /// Forgets the entries of tokens that expired before `before`: such a
    /// token fails its `exp` check anyway.
    pub fn prune(&self, before: i64) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, exp| *exp >= before);
    }

    /// How many revocations are held.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no revocation is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_never_refreshed_gives_no_answer() {
        let list = Denylist::new(5);
        assert_eq!(list.check("a", 0), Err(Stale));
    }

    #[test]
    fn a_list_is_trusted_for_max_staleness_seconds_after_a_refresh() {
        let list = Denylist::new(5);
        list.refresh(vec![("a".into(), 100)], 10);
        assert_eq!(list.check("a", 10), Ok(true));
        assert_eq!(list.check("b", 14), Ok(false));
        assert_eq!(list.check("a", 15), Err(Stale));
        list.mark_fresh(15);
        assert_eq!(list.check("a", 15), Ok(true));
    }

    #[test]
    fn local_revocations_count_at_once_and_expired_ones_are_pruned() {
        let list = Denylist::new(5);
        list.mark_fresh(0);
        list.insert("a".into(), 10);
        list.insert("b".into(), 20);
        assert_eq!(list.check("a", 1), Ok(true));
        list.prune(11);
        assert!(!list.contains("a"));
        assert!(list.contains("b"));
        assert_eq!(list.len(), 1);
    }
}
