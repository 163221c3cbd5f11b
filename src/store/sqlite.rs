//! The SQLite adapter: one file, WAL journal, migrations from
//! `migrations/sqlite`.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::backend::{Backend, SqlStore};
use super::PoolSettings;

/// SQLite's page cache per connection, in KiB.
const SQLITE_CACHE_KIB: u32 = 256;

/// How long opening a database retries SQLite's immediate "busy" answers.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(10);

/// Whether an error is SQLite's SQLITE_BUSY (primary result code 5, any
/// extended code), which asks the caller to try again.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(d)) => d
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == 5),
            _ => false,
        })
}

/// A SQLite database.
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

impl Backend for sqlx::Sqlite {
    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// Anonymous `?`s, bound in order: SQLite names a `$n` parameter, and
    /// sqlx looks each name up with `sqlite3_bind_parameter_name`, a linear
    /// scan, so binding a batch of 9,000 named parameters was quadratic
    /// (it took more CPU than signing the tokens, BENCHMARKS.md).
    fn placeholders(_first: usize, n: usize) -> String {
        vec!["?"; n].join(", ")
    }

    fn lock_out_writers(_table: &str) -> Option<String> {
        None
    }

    fn join_writers(_table: &str) -> Option<String> {
        None
    }

    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
}

impl SqlStore<sqlx::Sqlite> {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .context("Failed to parse the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // SQLite's default page cache is 2 MiB per connection, 20 MiB over
            // a full pool, and lookups of many distinct clients fill it all;
            // that memory is duplicated by the kernel's page cache anyway.
            // Every hot read is served from ficha's own client cache, so a
            // small one costs nothing measurable (BENCHMARKS.md).
            .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"));
        let path = opts.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("Failed to create the database directory {}", dir.display())
            })?;
        }
        create_owner_only(&path)?;
        // A new database file is in rollback-journal mode until its first
        // connection switches it to WAL, and while several processes open
        // it at once SQLite may answer one of them "database is locked" at
        // once, without waiting (it would deadlock otherwise). That answer
        // means "try again": it never leaves anything half done.
        let deadline = std::time::Instant::now() + OPEN_RETRY_FOR;
        loop {
            match Self::open(opts.clone(), settings, &path).await {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    let pause = 20 + rand::random::<u64>() % 50;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }

    /// Opens an existing database for reading only: nothing is created or
    /// migrated (`ficha config check`); also says where its schema stands.
    pub async fn open_unmigrated(
        url: &str,
        settings: &PoolSettings,
    ) -> anyhow::Result<(Self, super::SchemaStatus)> {
        let opts = SqliteConnectOptions::from_str(url)
            .context("Failed to parse the SQLite URL")?
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let path = opts.get_filename().to_path_buf();
        anyhow::ensure!(
            path.exists(),
            "the SQLite database {} does not exist",
            path.display()
        );
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.min(2))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(opts)
            .await
            .with_context(|| format!("Failed to open the SQLite database {}", path.display()))?;
        let (tables,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&pool)
        .await
        .context("Failed to read the SQLite database")?;
        let applied = if tables == 0 {
            Vec::new()
        } else {
            sqlx::query_as(super::schema::APPLIED_QUERY)
                .fetch_all(&pool)
                .await
                .context("Failed to read the applied migrations")?
        };
        let status = super::SchemaStatus::compare(&sqlx::migrate!("./migrations/sqlite"), applied);
        Ok((SqlStore::new(pool), status))
    }

    /// Opens the pool and applies the migrations, once.
    async fn open(
        opts: SqliteConnectOptions,
        settings: &PoolSettings,
        path: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(opts)
            .await
            .with_context(|| format!("Failed to open the SQLite database {}", path.display()))?;
        // A database already at this binary's schema needs no lock: a CLI
        // command next to a busy server (`audit list`, `client list`) would
        // otherwise queue behind its writes for SQLite's write lock.
        if Self::is_current(&pool).await {
            return Ok(SqlStore::new(pool));
        }
        // Several processes may open a new database at once (a server and a
        // CLI command): sqlx's migration lock does nothing on SQLite, so two
        // of them would both run a migration, and the second would fail on
        // a table the first made. `BEGIN IMMEDIATE` takes SQLite's write
        // lock (waiting up to the busy timeout) for the whole check-and-
        // apply; each migration is a savepoint inside it.
        let mut conn = pool
            .acquire()
            .await
            .with_context(|| format!("Failed to open the SQLite database {}", path.display()))?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .context("Failed to lock the SQLite database for its migrations")?;
        sqlx::migrate!("./migrations/sqlite")
            .run_direct(&mut *tx)
            .await
            .context("Failed to migrate the SQLite database")?;
        tx.commit()
            .await
            .context("Failed to migrate the SQLite database")?;
        drop(conn);
        Ok(SqlStore::new(pool))
    }
}

impl SqlStore<sqlx::Sqlite> {
    /// Whether every migration this binary carries is applied, unchanged,
    /// and nothing else is: read without any lock. Any doubt (no table, a
    /// read error) answers no, and the locked path decides.
    async fn is_current(pool: &sqlx::SqlitePool) -> bool {
        let Ok(applied) = sqlx::query_as(super::schema::APPLIED_QUERY)
            .fetch_all(pool)
            .await
        else {
            return false;
        };
        let status = super::SchemaStatus::compare(&sqlx::migrate!("./migrations/sqlite"), applied);
        status.pending.is_empty() && status.unknown.is_empty() && status.modified.is_empty()
    }
}

/// Creates the database file mode 0600 before SQLite opens it: it holds
/// secret hashes and sealed keys. SQLite gives its `-wal` and `-shm` files
/// the database file's mode. An existing file is left as it is.
fn create_owner_only(path: &std::path::Path) -> anyhow::Result<()> {
    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        // Another process created it first: it is theirs to have made.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("Failed to create the database {}", path.display()))),
    }
}
