//! The key ring's rows (`signing_keys`, `claims_keys`): public JWKs with
//! their lifecycle state, and private halves sealed under the operator's
//! key when they are kept in the database. The [`KeyStore`] port.

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{corrupt, map_err, Backend, SqlStore, Value};
use crate::keys::{KeyRecord, KeyState, KeyStore, SealedClaimsKey};
use crate::oauth::StoreError;
use crate::sync::Change;

/// A signing key row as read, before typing.
#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    public_jwk: String,
    sealed_private_key: Option<Vec<u8>>,
    created_at: i64,
    activated_at: Option<i64>,
    retiring_at: Option<i64>,
}

impl KeyRow {
    fn into_record(self) -> Result<KeyRecord, StoreError> {
        Ok(KeyRecord {
            alg: self.alg.parse().map_err(|_| corrupt("key algorithm"))?,
            state: self
                .state
                .parse::<KeyState>()
                .map_err(|_| corrupt("key state"))?,
            kid: self.kid,
            public_jwk: self.public_jwk,
            sealed_private_key: self.sealed_private_key,
            created_at: self.created_at,
            activated_at: self.activated_at,
            retiring_at: self.retiring_at,
        })
    }
}

#[async_trait::async_trait]
impl<DB> KeyStore for SqlStore<DB>
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
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, alg, state, public_jwk, sealed_private_key, created_at, activated_at, \
             retiring_at FROM signing_keys ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(KeyRow::into_record).collect()
    }

    async fn apply_key_changes(
        &self,
        new: Option<&KeyRecord>,
        changes: &[(String, KeyState, i64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut last = 0;
        if let Some(k) = new {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, state, public_jwk, sealed_private_key, \
                 created_at, activated_at, retiring_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(k.state.as_str())
            .bind(&k.public_jwk)
            .bind(&k.sealed_private_key)
            .bind(k.created_at)
            .bind(k.activated_at)
            .bind(k.retiring_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            last = k.created_at;
        }
        for (kid, state, at) in changes {
            let done = sqlx::query(
                "UPDATE signing_keys SET state = $2, \
                 activated_at = CASE WHEN $2 = 'active' THEN $3 ELSE activated_at END, \
                 retiring_at = CASE WHEN $2 = 'retiring' THEN $3 ELSE retiring_at END \
                 WHERE kid = $1",
            )
            .bind(kid)
            .bind(state.as_str())
            .bind(*at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            // Dropping the transaction rolls back what came before.
            if DB::rows_affected(&done) != 1 {
                return Err(StoreError::NotFound);
            }
            last = last.max(*at);
        }
        Self::log_change(&mut tx, &Change::Keys, last).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_claims_keys(&self) -> Result<Vec<SealedClaimsKey>, StoreError> {
        let rows: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT kid, sealed_key, created_at FROM claims_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(kid, sealed, created_at)| SealedClaimsKey {
                kid,
                sealed,
                created_at,
            })
            .collect())
    }

    async fn insert_claims_key(&self, k: &SealedClaimsKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO claims_keys (kid, sealed_key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&k.kid)
        .bind(&k.sealed)
        .bind(k.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
