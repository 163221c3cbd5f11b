//! What the change log records and the storage port that reads it.

use async_trait::async_trait;

use crate::keys::KeyStore;
use crate::oauth::{ClientId, ClientStore, StoreError};
use crate::sandbox::FaultStore;

/// One entry of the change log that keeps instance caches coherent. Stores
/// append one in the same transaction as the write it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A client row (or its secrets) changed.
    Client(ClientId),
    /// The key ring changed.
    Keys,
    /// An access token was revoked (RFC 7009); the subject is its `jti`.
    Revoked(String),
    /// The sandbox fault table changed (only sandbox servers read it).
    Faults,
    /// Something else changed; drop every cache.
    All,
}

/// The change log's storage port.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The latest change-log sequence number.
    async fn latest_change(&self) -> Result<i64, StoreError>;
    /// Change-log entries with a sequence number above `after`, in order.
    async fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change)>, StoreError>;
    /// Records a change that is not a client write (a key rotation).
    async fn record_change(&self, change: &Change, now: i64) -> Result<(), StoreError>;
}

/// What the [`Poller`](super::Poller) reads: the log and every table whose
/// cache it reloads.
pub trait SyncStore: ChangeLog + ClientStore + KeyStore + FaultStore {}

impl<T: ChangeLog + ClientStore + KeyStore + FaultStore> SyncStore for T {}
