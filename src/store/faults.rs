//! The sandbox's fault table (`sandbox_faults`), one row per client; each
//! write is announced on the change log so every sandbox instance reloads
//! it. Production servers never read it (SPEC §6).

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{corrupt, map_err, Backend, SqlStore, Value};
use crate::oauth::{ClientId, StoreError};
use crate::sandbox::{FaultRecord, FaultStore};
use crate::sync::Change;

/// A fault row as read: client, kind, remaining, ratio, seed, generation,
/// created.
type FaultRow = (
    String,
    String,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    i64,
    i64,
);

/// Types a fault row.
fn fault(
    (client_id, kind, remaining, ratio, seed, generation, created_at): FaultRow,
) -> Result<FaultRecord, StoreError> {
    Ok(FaultRecord {
        client_id: ClientId::parse(&client_id).map_err(|_| corrupt("fault client id"))?,
        kind: kind.parse().map_err(|_| corrupt("fault kind"))?,
        times: remaining.map(|n| u32::try_from(n.max(1)).unwrap_or(u32::MAX)),
        ratio,
        seed: seed.map(|s| s as u64),
        generation,
        created_at,
    })
}

#[async_trait::async_trait]
impl<DB> FaultStore for SqlStore<DB>
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
    async fn list_faults(&self) -> Result<Vec<FaultRecord>, StoreError> {
        let rows: Vec<FaultRow> = sqlx::query_as(
            "SELECT client_id, kind, remaining, ratio, seed, generation, created_at \
             FROM sandbox_faults ORDER BY client_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(fault).collect()
    }

    async fn set_fault(&self, f: &FaultRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Upsert: `ON CONFLICT ... DO UPDATE` with `excluded`, which both
        // backends spell the same.
        sqlx::query(
            "INSERT INTO sandbox_faults \
             (client_id, kind, remaining, ratio, seed, generation, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (client_id) DO UPDATE SET kind = excluded.kind, \
             remaining = excluded.remaining, ratio = excluded.ratio, seed = excluded.seed, \
             generation = excluded.generation, created_at = excluded.created_at",
        )
        .bind(f.client_id.as_ref())
        .bind(f.kind.to_string())
        .bind(f.times.map(i64::from))
        .bind(f.ratio)
        // The seed's 64 bits, stored as the signed BIGINT both backends have.
        .bind(f.seed.map(|s| s as i64))
        .bind(f.generation)
        .bind(f.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        Self::log_change(&mut tx, &Change::Faults, f.created_at).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn clear_faults(&self, client: Option<&ClientId>, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = match client {
            Some(id) => {
                sqlx::query("DELETE FROM sandbox_faults WHERE client_id = $1")
                    .bind(id.as_ref())
                    .execute(&mut *tx)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM sandbox_faults")
                    .execute(&mut *tx)
                    .await
            }
        }
        .map_err(map_err)?;
        Self::log_change(&mut tx, &Change::Faults, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(DB::rows_affected(&done))
    }
}
