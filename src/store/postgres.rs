//! The PostgreSQL adapter: a bounded pool with explicit timeouts, and
//! migrations from `migrations/postgres` (sqlx takes an advisory lock, so
//! several instances starting at once migrate safely).

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::backend::{Backend, SqlStore};
use super::PoolSettings;

/// A PostgreSQL database.
pub type PgStore = SqlStore<sqlx::Postgres>;

impl Backend for sqlx::Postgres {
    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn placeholders(first: usize, n: usize) -> String {
        super::backend::numbered_placeholders(first, n)
    }

    /// SHARE ROW EXCLUSIVE conflicts with the ROW EXCLUSIVE lock every
    /// INSERT takes and holds to its commit, and with itself.
    fn lock_out_writers(table: &str) -> Option<String> {
        Some(format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    }

    /// ROW EXCLUSIVE, the lock an INSERT takes, taken before any insert.
    fn join_writers(table: &str) -> Option<String> {
        Some(format!("LOCK TABLE {table} IN ROW EXCLUSIVE MODE"))
    }

    const BEGIN_WRITE: &'static str = "BEGIN";
}

impl SqlStore<sqlx::Postgres> {
    /// Connects to and migrates the database at `url`.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let opts: PgConnectOptions = url.parse().context("Failed to parse the PostgreSQL URL")?;
        // A query that outlives this is a database in trouble; fail it so
        // the token endpoint answers 503 instead of hanging.
        let opts = opts.options([("statement_timeout", "5000")]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(opts)
            .await
            .context("Failed to connect to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .context("Failed to migrate the PostgreSQL database")?;
        Ok(SqlStore::new(pool))
    }

    /// Connects without migrating (`ficha config check`), in read-only
    /// transactions, and says where the schema stands.
    pub async fn open_unmigrated(
        url: &str,
        settings: &PoolSettings,
    ) -> anyhow::Result<(Self, super::SchemaStatus)> {
        let opts: PgConnectOptions = url.parse().context("Failed to parse the PostgreSQL URL")?;
        let opts = opts.options([
            ("statement_timeout", "5000"),
            ("default_transaction_read_only", "on"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.min(2))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(opts)
            .await
            .context("Failed to connect to PostgreSQL")?;
        let (present,): (bool,) =
            sqlx::query_as("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .context("Failed to read the PostgreSQL database")?;
        let applied = if present {
            sqlx::query_as(super::schema::APPLIED_QUERY)
                .fetch_all(&pool)
                .await
                .context("Failed to read the applied migrations")?
        } else {
            Vec::new()
        };
        let status =
            super::SchemaStatus::compare(&sqlx::migrate!("./migrations/postgres"), applied);
        Ok((SqlStore::new(pool), status))
    }
}
