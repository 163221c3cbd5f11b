//! The change-log poller as a step function: [`Poller::tick`] does one poll
//! and everything it implies, so tests drive it with a manual clock and an
//! in-memory store; [`Poller::run`] calls it on an interval.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::keys::{KeyRing, KeyRingHandle, KeyVault};
use crate::oauth::{Authenticator, Clock, Denylist, REVOCATION_PRUNE_MARGIN_SECS};
use crate::sandbox::Sandbox;

use super::change::{Change, SyncStore};

/// Every this many polls the denylist is reloaded whole and pruned, a
/// safety net under the per-change reloads.
pub const DENYLIST_REFRESH_TICKS: u64 = 60;

/// Every this many polls the authenticator's caches run their pending
/// evictions and the batched secret last-use times are written.
const HOUSEKEEPING_TICKS: u64 = 10;

/// How far back each poll re-reads the change log. PostgreSQL sequence
/// numbers are assigned at insert but become visible at commit, so a
/// lower number can appear after a higher one; re-reading a window and
/// remembering what was applied catches those late arrivals.
pub const CHANGE_WINDOW: i64 = 1000;

/// How long one poll may take before it counts as a failure: a database
/// that hangs must let the caches go stale as surely as one that refuses.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(3);

/// The caches the poller keeps coherent, and where it reloads them from.
pub struct Caches {
    /// The database holding the change log and the cached tables.
    pub store: Arc<dyn SyncStore>,
    /// Where the signing keys' private halves live.
    pub vault: KeyVault,
    /// The key ring requests sign with.
    pub keys: Arc<KeyRingHandle>,
    /// The client cache.
    pub auth: Arc<Authenticator>,
    /// The revoked access tokens.
    pub denylist: Arc<Denylist>,
    /// The time freshness is measured in.
    pub clock: Arc<dyn Clock>,
    /// The fault set, on sandbox servers only.
    pub sandbox: Option<Arc<Sandbox>>,
}

/// What a poll's changes ask to be reloaded whole.
#[derive(Debug, Default, Clone, Copy)]
struct Reloads {
    keys: bool,
    faults: bool,
    denylist: bool,
}

/// Polls the change log: evicts changed clients, reloads the key ring, the
/// denylist and the sandbox faults, keeps the caches' freshness, flushes
/// secret last-use times, prunes expired revocations.
pub struct Poller {
    caches: Caches,
    /// Everything up to here was reflected in the caches when they were
    /// loaded at start-up.
    baseline: i64,
    /// The highest sequence number applied.
    cursor: i64,
    /// Sequence numbers applied within the window below `cursor`.
    seen: BTreeSet<i64>,
    /// Whether the last poll reached the database.
    healthy: bool,
    /// A denylist reload failed and is owed.
    denylist_pending: bool,
    ticks: u64,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("cursor", &self.cursor)
            .field("healthy", &self.healthy)
            .field("ticks", &self.ticks)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// A poller over caches loaded after the change log stood at `cursor`.
    pub fn new(caches: Caches, cursor: i64) -> Self {
        Poller {
            caches,
            baseline: cursor,
            cursor,
            seen: BTreeSet::new(),
            healthy: true,
            denylist_pending: false,
            ticks: 0,
        }
    }

    /// Whether the last poll reached the database.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// The highest change-log sequence number applied.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Polls every `interval`, forever; a slow poll delays the next one
    /// rather than bunching them up.
    pub async fn run(mut self, interval: Duration) {
        let mut interval = tokio::time::interval(interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.tick().await;
        }
    }

    /// One poll and everything it implies.
    pub async fn tick(&mut self) {
        self.ticks += 1;
        let floor = self.floor();
        let polled =
            tokio::time::timeout(POLL_TIMEOUT, self.caches.store.changes_since(floor)).await;
        match polled {
            Ok(Ok(changes)) => self.apply(changes, floor).await,
            Ok(Err(e)) => {
                if self.healthy {
                    tracing::warn!(error.cause_chain = ?e, "change-log poll failed");
                }
                self.healthy = false;
            }
            Err(_) => {
                if self.healthy {
                    tracing::warn!("change-log poll timed out");
                }
                self.healthy = false;
            }
        }
        if self.ticks % DENYLIST_REFRESH_TICKS == 0 {
            self.prune_revocations().await;
        }
        if self.ticks % HOUSEKEEPING_TICKS == 0 {
            self.housekeeping().await;
        }
    }

    fn floor(&self) -> i64 {
        (self.cursor - CHANGE_WINDOW).max(0)
    }

    /// Applies a successful poll's changes read from above `floor`.
    async fn apply(&mut self, changes: Vec<(i64, Change)>, floor: i64) {
        let c = &self.caches;
        let recovering = !self.healthy;
        let mut reloads = Reloads {
            keys: recovering,
            faults: recovering,
            denylist: self.denylist_pending
                || recovering
                || self.ticks % DENYLIST_REFRESH_TICKS == 0,
        };
        if recovering {
            // Cut off for a while: changes may have been pruned.
            c.auth.evict_all();
            tracing::info!("database reachable again");
        }
        for (seq, change) in changes {
            if seq <= self.baseline || seq <= floor || !self.seen.insert(seq) {
                continue;
            }
            self.cursor = self.cursor.max(seq);
            match change {
                Change::Client(id) => c.auth.evict_client(&id),
                Change::Keys => reloads.keys = true,
                Change::Revoked(_) => reloads.denylist = true,
                Change::Faults => reloads.faults = true,
                Change::All => {
                    c.auth.evict_all();
                    reloads = Reloads {
                        keys: true,
                        faults: true,
                        denylist: true,
                    };
                }
            }
        }
        self.seen = self.seen.split_off(&self.floor());
        self.reload(reloads).await;
    }

    /// Reloads what the changes asked for and marks the caches fresh.
    async fn reload(&mut self, reloads: Reloads) {
        let c = &self.caches;
        if reloads.keys {
            match KeyRing::load(&*c.store, &c.vault, c.clock.now()).await {
                Ok(ring) => {
                    c.keys.replace(ring);
                    tracing::info!("key ring reloaded");
                }
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, "Failed to reload the key ring")
                }
            }
        }
        if let (true, Some(sandbox)) = (reloads.faults, &c.sandbox) {
            match sandbox.faults.reload(c.store.list_faults()).await {
                Ok(()) => tracing::info!("sandbox faults reloaded"),
                Err(e) => {
                    tracing::warn!(error.cause_chain = ?e, "Failed to reload the sandbox faults")
                }
            }
        }
        self.healthy = true;
        let now = c.clock.now();
        c.auth.mark_fresh(now);
        if !reloads.denylist {
            c.denylist.mark_fresh(now);
            return;
        }
        // The whole list: revocations are rare and short-lived, and a reload
        // also heals any change the poll missed. A failed reload leaves the
        // list unrefreshed (it goes stale) and is retried on the next poll.
        match c.store.revoked_tokens(now).await {
            Ok(list) => {
                c.denylist.refresh(list, now);
                self.denylist_pending = false;
            }
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, "Failed to reload the revoked tokens");
                self.denylist_pending = true;
            }
        }
    }

    async fn prune_revocations(&self) {
        let c = &self.caches;
        let before = c.clock.now() - REVOCATION_PRUNE_MARGIN_SECS;
        c.denylist.prune(before);
        if let Err(e) = c.store.prune_revocations(before).await {
            tracing::debug!(error.cause_chain = ?e, "Failed to prune revoked tokens");
        }
    }

    async fn housekeeping(&self) {
        let c = &self.caches;
        c.auth.housekeeping();
        let uses = c.auth.take_secret_uses();
        if !uses.is_empty() {
            if let Err(e) = c.store.record_secret_use(&uses).await {
                tracing::debug!(error.cause_chain = ?e, "Failed to record secret use");
            }
        }
    }
}
