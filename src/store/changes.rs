//! The change log (`changes`): every write that other instances must see
//! appends a row in its own transaction; instances poll for rows past
//! their cursor. Rows older than [`CHANGE_RETENTION_SECS`] are pruned on
//! each append.

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::oauth::{ClientId, StoreError};
use crate::sync::{Change, ChangeLog};

/// Change-log rows older than this are pruned on each write; an instance
/// that was cut off longer than this drops its whole cache on reconnection.
pub(crate) const CHANGE_RETENTION_SECS: i64 = 3600;

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row> + Encode<'s, DB> + Type<DB>,
    bool: Value<DB>,
    i64: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<f64>: Value<DB>,
    Option<String>: Value<DB>,
    Option<Vec<u8>>: Value<DB>,
{
    /// Appends `change` on `conn` (the caller's transaction) and prunes
    /// rows past retention.
    pub(super) async fn log_change(
        conn: &mut DB::Connection,
        change: &Change,
        now: i64,
    ) -> Result<(), StoreError> {
        let (kind, subject) = change_columns(change);
        sqlx::query("INSERT INTO changes (kind, subject, at) VALUES ($1, $2, $3)")
            .bind(kind)
            .bind(subject)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM changes WHERE at < $1")
            .bind(now - CHANGE_RETENTION_SECS)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl<DB> ChangeLog for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row> + Encode<'s, DB> + Type<DB>,
    bool: Value<DB>,
    i64: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<f64>: Value<DB>,
    Option<String>: Value<DB>,
    Option<Vec<u8>>: Value<DB>,
{
    async fn latest_change(&self) -> Result<i64, StoreError> {
        let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(seq.unwrap_or(0))
    }

    async fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change)>, StoreError> {
        let rows: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT seq, kind, subject FROM changes WHERE seq > $1 ORDER BY seq")
                .bind(after)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(seq, kind, subject)| (seq, change(&kind, subject)))
            .collect())
    }

    async fn record_change(&self, change: &Change, now: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        Self::log_change(&mut conn, change, now).await
    }
}

/// Types a change-log row; a row this binary cannot read drops every cache.
fn change(kind: &str, subject: Option<String>) -> Change {
    match (kind, subject) {
        ("client", Some(id)) => ClientId::parse(&id).map_or(Change::All, Change::Client),
        ("keys", _) => Change::Keys,
        ("revoked", Some(jti)) => Change::Revoked(jti),
        ("faults", _) => Change::Faults,
        _ => Change::All,
    }
}

/// The change-log columns of a change.
fn change_columns(change: &Change) -> (&'static str, Option<String>) {
    match change {
        Change::Client(id) => ("client", Some(id.as_ref().to_owned())),
        Change::Keys => ("keys", None),
        Change::Revoked(jti) => ("revoked", Some(jti.clone())),
        Change::Faults => ("faults", None),
        Change::All => ("all", None),
    }
}
