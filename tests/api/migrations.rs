//! The two migration sets (`migrations/sqlite`, `migrations/postgres`),
//! applied to fresh databases, must describe the same tables and views, columns and
//! nullability (types differ by design: BLOB and BYTEA, AUTOINCREMENT and
//! BIGSERIAL).

use std::collections::BTreeSet;

use ficha::store::{connect, PoolSettings};
use tempfile::TempDir;

use crate::helpers::{drop_database, fresh_database, Backend};

/// `(table, column, nullable)` of every table a migration set makes, less
/// sqlx's own bookkeeping.
type Columns = BTreeSet<(String, String, bool)>;

async fn sqlite_columns(url: &str) -> Columns {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    // SQLite lets a primary-key column be NULL unless it says NOT NULL
    // (a legacy quirk); ficha never stores one, and PostgreSQL makes every
    // primary-key column NOT NULL, so a key column counts as NOT NULL.
    let rows: Vec<(String, String, bool, i64)> = sqlx::query_as(
        "SELECT m.name, p.name, p.\"notnull\", p.pk FROM sqlite_master m \
         JOIN pragma_table_info(m.name) p \
         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' \
         AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(t, c, not_null, pk)| (t, c, !(not_null || pk > 0)))
        .collect()
}

async fn postgres_columns(url: &str) -> Columns {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(t, c, nullable)| (t, c, nullable == "YES"))
        .collect()
}

#[tokio::test]
async fn both_migration_sets_describe_the_same_tables_and_columns() {
    let dir = TempDir::new().unwrap();
    let Some(pg) = fresh_database(Backend::Postgres, &dir).await else {
        return;
    };
    let lite = fresh_database(Backend::Sqlite, &dir).await.unwrap();
    drop(connect(&lite, &PoolSettings::default()).await.unwrap());
    drop(connect(&pg, &PoolSettings::default()).await.unwrap());
    let sqlite = sqlite_columns(&lite).await;
    let postgres = postgres_columns(&pg).await;
    drop_database(&pg).await;
    assert!(
        sqlite.len() > 40,
        "the introspection found too little: {sqlite:?}"
    );
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the migration sets differ\n  only in migrations/sqlite: {only_sqlite:?}\n  \
         only in migrations/postgres: {only_postgres:?}"
    );
}

/// Applies the migrations up to `last` from the backend's set, as an
/// instance of that older ficha would have, then runs `then`.
async fn migrate_up_to(url: &str, last: i64, then: &str) {
    use sqlx::migrate::Migrator;
    use std::borrow::Cow;
    use std::str::FromStr as _;
    let dir = if url.starts_with("sqlite") {
        "migrations/sqlite"
    } else {
        "migrations/postgres"
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut migrator = Migrator::new(path).await.unwrap();
    let older: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect();
    migrator.migrations = Cow::Owned(older);
    if url.starts_with("sqlite") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        migrator.run(&pool).await.unwrap();
        sqlx::raw_sql(then).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        sqlx::raw_sql(then).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// Migration 0009 moved what tokens share into `audit_grants`: the rows
/// an older ficha wrote must come out of `audit list` as they went in.
/// Migration 0011 gave each grant the `last_iat` of its tokens: a prune of
/// the older rows keeps the grant the newest needs.
async fn audit_rows_survive_the_grants_migration(backend: Backend) {
    use ficha::audit::{AuditQuery, AuditRecord};
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(backend, &dir).await else {
        return;
    };
    let old = [
        (
            "j-1",
            "wallet-a",
            "wallet-a",
            "transaction",
            "payvalida",
            "k1",
            Some("10.0.0.1"),
        ),
        (
            "j-2",
            "wallet-a",
            "wallet-a",
            "transaction",
            "payvalida",
            "k1",
            None,
        ),
        (
            "j-3",
            "wallet-b",
            "user-7",
            "annulment",
            "nequi",
            "k2",
            Some("::1"),
        ),
    ];
    let values: Vec<String> = old
        .iter()
        .enumerate()
        .map(
            |(n, (jti, client, subject, scope, dialect, kid, address))| {
                let iat = 1_700_000_000 + n as i64;
                let address = address.map_or("NULL".to_owned(), |a| format!("'{a}'"));
                format!(
                    "('{jti}', '{client}', '{subject}', '{scope}', '{dialect}', '{kid}', \
                 {iat}, {}, {address})",
                    iat + 1200
                )
            },
        )
        .collect();
    let insert = format!(
        "INSERT INTO audit_tokens \
         (jti, client_id, subject, scope, dialect, kid, iat, exp, address) VALUES {}",
        values.join(", ")
    );
    migrate_up_to(&url, 8, &insert).await;
    let store = connect(&url, &PoolSettings::default()).await.unwrap();
    let query = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    let rows = store.list_audit(&query).await.unwrap();
    let expected: Vec<AuditRecord> = old
        .iter()
        .enumerate()
        .rev()
        .map(
            |(n, (jti, client, subject, scope, dialect, kid, address))| AuditRecord {
                jti: (*jti).into(),
                client_id: (*client).into(),
                subject: (*subject).into(),
                scope: (*scope).into(),
                dialect: (*dialect).into(),
                kid: (*kid).into(),
                iat: 1_700_000_000 + n as i64,
                exp: 1_700_001_200 + n as i64,
                address: address.map(str::to_owned),
            },
        )
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(store.prune_audit(1_700_000_002).await.unwrap(), 2);
    assert_eq!(store.list_audit(&query).await.unwrap(), expected[..1]);
    drop(store);
    drop_database(&url).await;
}

#[tokio::test]
async fn audit_rows_survive_the_grants_migration_on_sqlite() {
    audit_rows_survive_the_grants_migration(Backend::Sqlite).await;
}

#[tokio::test]
async fn audit_rows_survive_the_grants_migration_on_postgres() {
    audit_rows_survive_the_grants_migration(Backend::Postgres).await;
}
