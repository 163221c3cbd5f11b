//! Storage: the combined [`Store`] port the server runs on, and its
//! adapters for SQLite (the default, embedded) and PostgreSQL (for many
//! instances on one database). The queries are written once, generic over
//! the sqlx database ([`backend`]), one file per storage concern; each
//! backend keeps only its connection and its migrations
//! (`migrations/sqlite`, `migrations/postgres`). The backend is chosen
//! once, by the URL scheme, in [`connect`].

mod audit;
mod backend;
mod changes;
mod clients;
mod faults;
mod keys;
mod postgres;
mod revocations;
mod schema;
mod secrets;
mod sqlite;
mod users;

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditStore;
use crate::keys::KeyStore;
use crate::oauth::{ClientStore, UserStore};
use crate::sandbox::FaultStore;
use crate::sync::{ChangeLog, SyncStore};

pub use backend::{Backend, SqlStore, Value};
pub use postgres::PgStore;
pub use schema::SchemaStatus;
pub use sqlite::SqliteStore;

/// Everything the server needs from one database: the ports of the core
/// (clients, users), the key ring, the sandbox's faults, the audit trail
/// and the change log. Both adapters implement it; so may any type that
/// implements the six ports. [`SyncStore`] (the poller's view) is named
/// among the bounds so that a `dyn Store` can be handed to the poller.
pub trait Store:
    ClientStore + KeyStore + UserStore + FaultStore + AuditStore + ChangeLog + SyncStore
{
}

impl<T> Store for T where
    T: ClientStore + KeyStore + UserStore + FaultStore + AuditStore + ChangeLog + SyncStore
{
}

/// Connection-pool sizing and timeouts, explicit for both backends.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Maximum open connections per instance.
    pub max_connections: u32,
    /// How long a query waits for a free or new connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Connects to `url` (`sqlite:` or `postgres:`), creating a SQLite file and
/// its directory if needed, and applies the backend's migrations.
pub async fn connect(url: &str, pool: &PoolSettings) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, pool).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::connect(url, pool).await?))
    } else {
        anyhow::bail!("unsupported database URL: it must start with sqlite: or postgres:")
    }
}

/// Opens an existing database without creating or migrating anything
/// (`ficha config check`), and says where its schema stands.
pub async fn open_unmigrated(
    url: &str,
    pool: &PoolSettings,
) -> anyhow::Result<(Arc<dyn Store>, SchemaStatus)> {
    if url.starts_with("sqlite:") {
        let (store, status) = SqliteStore::open_unmigrated(url, pool).await?;
        Ok((Arc::new(store), status))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let (store, status) = PgStore::open_unmigrated(url, pool).await?;
        Ok((Arc::new(store), status))
    } else {
        anyhow::bail!("unsupported database URL: it must start with sqlite: or postgres:")
    }
}
