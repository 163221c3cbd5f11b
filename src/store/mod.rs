//! Storage adapters: SQLite (the default, embedded) and PostgreSQL (for many
//! instances on one database). Each implements the core's `ClientStore` and
//! the key ring's `KeyStore` with its own pool and its own migrations
//! (`migrations/sqlite`, `migrations/postgres`); the backend is chosen once,
//! by the URL scheme, in [`connect`].

pub(crate) mod audit;
mod postgres;
mod schema;
pub(crate) mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use crate::oauth::Store;

pub use postgres::PgStore;
pub use schema::SchemaStatus;
pub use sqlite::SqliteStore;

/// Ties an adapter to its sqlx database type (used by the shared queries).
pub trait Backend {
    /// The sqlx database.
    type Db: sqlx::Database;
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
