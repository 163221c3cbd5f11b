//! Cache coherence between instances (SPEC §9): the change log's entries
//! ([`Change`]), its storage port ([`ChangeLog`]) and the [`Poller`] that
//! reads it and keeps this instance's caches — the authenticator's clients,
//! the key ring, the denylist and, in sandbox mode, the fault set — in step
//! with the database, or marks them stale when the database is out of reach.
//!
//! `oauth`, `keys` and `sandbox` own their caches and expose what the poller
//! calls (`Authenticator::evict_client`, `KeyRingHandle::replace`,
//! `Denylist::refresh`, `FaultSet::replace`); none of them knows the change
//! kinds, so none depends on this module or on another through it.

mod change;
mod poller;
#[cfg(test)]
mod tests;

pub use change::{Change, ChangeLog, SyncStore};
pub use poller::{Caches, Poller, CHANGE_WINDOW, DENYLIST_REFRESH_TICKS, POLL_TIMEOUT};
