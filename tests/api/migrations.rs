//! The two migration sets (`migrations/sqlite`, `migrations/postgres`),
//! applied to fresh databases, must describe the same tables, columns and
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
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
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
