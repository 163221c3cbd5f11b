//! The denylist of revoked access tokens (`revoked_tokens`, RFC 7009): a
//! row per `jti` until its token expires, each new one announced on the
//! change log so every instance adds it to its in-memory denylist.

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::oauth::{StoreError, REVOCATION_PRUNE_MARGIN_SECS};
use crate::sync::Change;

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
    /// `ClientStore::revoke_token`.
    pub(super) async fn insert_revocation(
        &self,
        jti: &str,
        exp: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, exp, revoked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(exp)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // A second revocation of the same token changes nothing.
        if DB::rows_affected(&done) > 0 {
            Self::log_change(&mut tx, &Change::Revoked(jti.to_owned()), now).await?;
        }
        sqlx::query("DELETE FROM revoked_tokens WHERE exp < $1")
            .bind(now - REVOCATION_PRUNE_MARGIN_SECS)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    /// `ClientStore::revoked_tokens`.
    pub(super) async fn live_revocations(
        &self,
        now: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as("SELECT jti, exp FROM revoked_tokens WHERE exp > $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    /// `ClientStore::is_revoked`.
    pub(super) async fn find_revocation(&self, jti: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT jti FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(row.is_some())
    }

    /// `ClientStore::prune_revocations`.
    pub(super) async fn delete_revocations(&self, before: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM revoked_tokens WHERE exp < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
