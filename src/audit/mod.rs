//! The audit trail of issued tokens (SPEC §10): who got which token when,
//! and from where. The request path only pushes a record into a bounded
//! in-memory buffer ([`AuditTrail`]); a background task ([`run_writer`])
//! writes the buffer to the database at most once a second (read back
//! through the `audit_tokens` view) and prunes rows past their retention.
//! If the database is down the records wait in the buffer; what overflows
//! it is dropped and counted, never waited for. A record holds a token's identifiers, never the token.

mod address;
mod batch;
mod entry;
mod query;
mod trail;
mod writer;

use async_trait::async_trait;
use serde::Serialize;

use crate::oauth::StoreError;

pub use address::AddressText;
pub use batch::AuditBatch;
pub use entry::{AuditEntry, EntryFields, Grant, GRANT_FIELDS};
pub use query::{parse_time, AuditQuery};
pub use trail::{AuditStats, AuditTrail, DEFAULT_AUDIT_CAPACITY};
pub use writer::{run_writer, WRITE_EVERY};

/// Rows are kept this many days unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// One issued token, as `audit list` reads it (the buffer keeps it
/// as an [`AuditEntry`] of an [`AuditBatch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The token's `jti`.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Its `sub` (the client, or the resource owner).
    pub subject: String,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The dialect whose endpoint issued it.
    pub dialect: String,
    /// The signing key id.
    pub kid: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// The caller's address (behind trusted proxies, the forwarded one).
    pub address: Option<String>,
}

/// Storage of the trail; both SQL adapters implement it.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Inserts a batch in one transaction (a `jti` already there is kept).
    async fn insert_audit(&self, batch: &AuditBatch) -> Result<(), StoreError>;
    /// Deletes the rows of tokens issued before `before`; returns how many.
    async fn prune_audit(&self, before: i64) -> Result<u64, StoreError>;
    /// The rows matching `query`, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
}
