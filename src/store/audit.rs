//! The audit trail's rows (`audit_tokens`): the [`AuditStore`] port.

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::audit::{AuditEntry, AuditQuery, AuditRecord, AuditStore};
use crate::oauth::StoreError;

/// The columns of a row, each one bind.
const COLUMNS: usize = 9;

/// Rows per INSERT statement: 9 binds each stays far below SQLite's and
/// PostgreSQL's bind limits. A batch of several statements is still one
/// transaction, one write.
const INSERT_CHUNK: usize = 1000;

/// The rows `ficha audit list` may ask for at most.
const MAX_LIST: u32 = 100_000;

/// A row as read.
#[derive(sqlx::FromRow)]
struct AuditRow {
    jti: String,
    client_id: String,
    subject: String,
    scope: String,
    dialect: String,
    kid: String,
    iat: i64,
    exp: i64,
    address: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            jti: r.jti,
            client_id: r.client_id,
            subject: r.subject,
            scope: r.scope,
            dialect: r.dialect,
            kid: r.kid,
            iat: r.iat,
            exp: r.exp,
            address: r.address,
        }
    }
}

#[async_trait::async_trait]
impl<DB> AuditStore for SqlStore<DB>
where
    DB: Backend + sqlx::database::HasStatementCache,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row> + Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    bool: Value<DB>,
    i64: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<f64>: Value<DB>,
    Option<String>: Value<DB>,
    Option<Vec<u8>>: Value<DB>,
{
    async fn insert_audit(&self, records: &[AuditEntry]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for chunk in records.chunks(INSERT_CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", DB::placeholders(i * COLUMNS + 1, COLUMNS)))
                .collect();
            // A batch retried after a commit whose answer was lost must not
            // fail on the rows that made it.
            let sql = format!(
                "INSERT INTO audit_tokens \
                 (jti, client_id, subject, scope, dialect, kid, iat, exp, address) \
                 VALUES {} ON CONFLICT (jti) DO NOTHING",
                rows.join(", ")
            );
            // Only a full chunk's statement is kept prepared: it is reused
            // every second. A batch's last chunk has a size of its own each
            // time, and sqlx would keep up to 100 such statements, each of
            // up to 9,000 parameters, prepared on every connection.
            let mut query = sqlx::query::<DB>(&sql).persistent(chunk.len() == INSERT_CHUNK);
            for r in chunk {
                query = query
                    .bind(r.jti())
                    .bind(r.client_id())
                    .bind(r.subject())
                    .bind(r.scope())
                    .bind(r.dialect())
                    .bind(r.kid())
                    .bind(r.iat())
                    .bind(r.exp())
                    .bind(r.address());
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_tokens WHERE iat < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(DB::rows_affected(&done))
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        // Only the filters asked for reach the SQL, so that each can use
        // its index.
        let mut sql = String::from(
            "SELECT jti, client_id, subject, scope, dialect, kid, iat, exp, address \
             FROM audit_tokens WHERE 1 = 1",
        );
        let mut texts: Vec<&str> = Vec::new();
        let mut numbers: Vec<i64> = Vec::new();
        for (filter, value) in [
            (" AND client_id = ", query.client_id.as_deref()),
            (" AND jti = ", query.jti.as_deref()),
        ] {
            if let Some(v) = value {
                texts.push(v);
                sql.push_str(&format!("{filter}${}", texts.len()));
            }
        }
        let limit = i64::from(query.limit.min(MAX_LIST));
        for (filter, value) in [
            (" AND iat >= ", query.since),
            (" AND iat < ", query.until),
            (" ORDER BY iat DESC, jti LIMIT ", Some(limit)),
        ] {
            if let Some(v) = value {
                numbers.push(v);
                sql.push_str(&format!("{filter}${}", texts.len() + numbers.len()));
            }
        }
        let mut select = sqlx::query_as::<DB, AuditRow>(&sql);
        for t in texts {
            select = select.bind(t);
        }
        for n in numbers {
            select = select.bind(n);
        }
        let rows = select.fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }
}
