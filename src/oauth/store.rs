//! The storage port: what the core needs from a database, as typed domain
//! values. `store/` implements it for SQLite and PostgreSQL; an in-memory
//! implementation serves the unit tests.

use async_trait::async_trait;

use super::client::{Client, ClientId};
use crate::keys::KeyStore;

/// A storage failure, typed as far as the core cares.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A row with this key already exists.
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or failed.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// One entry of the change log that keeps instance caches coherent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A client row (or its secrets) changed.
    Client(ClientId),
    /// The key ring changed.
    Keys,
    /// An access token was revoked (RFC 7009); the subject is its `jti`.
    Revoked(String),
    /// Something else changed; drop every cache.
    All,
}

/// Client storage. Every write also appends to the change log in the same
/// transaction, so other instances see it on their next poll.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// A trivial round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The latest change-log sequence number.
    async fn latest_change(&self) -> Result<i64, StoreError>;
    /// Change-log entries with a sequence number above `after`, in order.
    async fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change)>, StoreError>;
    /// Records a change that is not a client write (a key rotation).
    async fn record_change(&self, change: &Change, now: i64) -> Result<(), StoreError>;
    /// The client with this id, with all its secrets.
    async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Every client, ordered by id.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Inserts a client and its secrets; `Conflict` if the id is taken.
    async fn create_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Replaces a client's attributes (not its secrets); `NotFound` if absent.
    async fn update_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Deletes a client and its secrets; `NotFound` if absent.
    async fn delete_client(&self, id: &ClientId, now: i64) -> Result<(), StoreError>;
    /// Adds a new secret and makes every other live secret of the client
    /// expire at `old_expire_at` (rotation with grace).
    async fn rotate_secret(
        &self,
        id: &ClientId,
        phc: &str,
        now: i64,
        old_expire_at: i64,
    ) -> Result<(), StoreError>;
    /// Records last-use times `(secret id, at)`, batched by the caller; this
    /// is not a change and appends nothing to the change log.
    async fn record_secret_use(&self, uses: &[(i64, i64)]) -> Result<(), StoreError>;
    /// Puts `jti` on the denylist until `exp` and appends
    /// [`Change::Revoked`] in the same transaction; revoking a token twice
    /// is not an error. Also prunes rows of tokens long expired.
    async fn revoke_token(&self, jti: &str, exp: i64, now: i64) -> Result<(), StoreError>;
    /// Every denylisted `(jti, exp)` whose token has not expired at `now`.
    async fn revoked_tokens(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Whether `jti` is on the denylist (one indexed lookup, for the CLI).
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Deletes the denylist rows of tokens that expired before `before`.
    async fn prune_revocations(&self, before: i64) -> Result<(), StoreError>;
}

/// Everything the server needs from one database.
pub trait Store: ClientStore + KeyStore {}

impl<T: ClientStore + KeyStore> Store for T {}
