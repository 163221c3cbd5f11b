//! What the shared queries need from a sqlx database, and the store type
//! they are written against. SQLite and PostgreSQL accept the same SQL here
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`; long lists take
//! [`Backend::placeholders`]), so every query is
//! written once, in the file of its storage concern, as a method of
//! [`SqlStore<DB>`] for any `DB` that meets the bounds below; each backend
//! keeps only its own connection and migrations (`sqlite.rs`,
//! `postgres.rs`).
//!
//! Rust does not carry a trait's where-clauses to its users (only its
//! supertraits), so the bounds cannot live on [`Backend`] alone: each
//! generic impl block restates them, and a backend that lacks one fails to
//! compile at that block, not at a macro call.

use std::sync::{Arc, Mutex};

use sqlx::{Database, Decode, Encode, Pool, Type};

use super::audit::GrantIds;

use crate::oauth::StoreError;

/// A database the shared queries run on (SQLite or PostgreSQL), with the
/// little that sqlx offers per driver only.
pub trait Backend: Database {
    /// The rows a statement changed (sqlx has it per driver, not on
    /// [`Database::QueryResult`]).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// `n` placeholders, comma-separated, for the parameters `first ..
    /// first + n` of a statement whose only parameters they are and whose
    /// length is known only at run time (an id list, a batch of rows).
    fn placeholders(first: usize, n: usize) -> String;

    /// The statement, if the database needs one, that keeps every writer of
    /// `table` out until the transaction ends. SQLite needs none: it has one
    /// writer at a time.
    fn lock_out_writers(table: &str) -> Option<String>;

    /// The statement, if the database needs one, by which a writer of
    /// `table` waits for a transaction that locked its writers out
    /// ([`Backend::lock_out_writers`]) and keeps the next one waiting until
    /// it commits, before it has written anything.
    fn join_writers(table: &str) -> Option<String>;

    /// How a transaction that reads and then writes begins: on SQLite it
    /// must take the write lock at once, or a write committed by another
    /// connection after its read would fail its first write at once
    /// (`SQLITE_BUSY_SNAPSHOT`) instead of waiting.
    const BEGIN_WRITE: &'static str;
}

/// A Rust type a backend both binds and reads. Its supertraits are implied
/// wherever `T: Value<DB>` is a bound, which keeps each impl block's
/// where-clause to one line per type.
pub trait Value<DB: Database>:
    Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Send + Sync
{
}

impl<DB: Database, T> Value<DB> for T where
    T: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Send + Sync
{
}

/// A database with the shared queries: `SqlStore<Sqlite>` or
/// `SqlStore<Postgres>`.
#[derive(Debug)]
pub struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// The audit grants' ids this store has written or read
    /// (`store::audit`), shared by its clones.
    pub(super) grant_ids: Arc<Mutex<GrantIds>>,
}

impl<DB: Database> SqlStore<DB> {
    pub(super) fn new(pool: Pool<DB>) -> Self {
        SqlStore {
            pool,
            grant_ids: Arc::default(),
        }
    }
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            grant_ids: self.grant_ids.clone(),
        }
    }
}

/// Maps a sqlx error to the core's store error.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Unavailable(e.into()),
    }
}

/// `$first, $first+1, ...`: PostgreSQL's placeholders. sqlx's
/// `QueryBuilder` would number them too, but its arguments' lifetime cannot
/// be shortened for a generic database, so the builder could never be
/// dropped after use.
pub(crate) fn numbered_placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row that holds a value the core cannot type.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("stored row has an invalid {what}"))
}
