//! The audit trail's rows: the [`AuditStore`] port. A token's own fields go
//! to `audit_issued`, what it shares with others of its grant (client,
//! subject, scope, dialect, kid) to `audit_grants`, once; the view
//! `audit_tokens` joins them back (migration 0009).

use std::collections::HashMap;

use anyhow::anyhow;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::audit::{AuditEntry, AuditQuery, AuditRecord, AuditStore};
use crate::oauth::StoreError;

/// The binds of a token's row: jti, grant id, iat, exp, address.
const COLUMNS: usize = 5;

/// The binds of a grant: client id, subject, scope, dialect, kid.
const GRANT_COLUMNS: usize = 5;

/// Rows per INSERT statement: 5 binds each stays far below SQLite's and
/// PostgreSQL's bind limits. A batch of several statements is still one
/// transaction, one write.
const INSERT_CHUNK: usize = 1000;

/// The rows `ficha audit list` may ask for at most.
const MAX_LIST: u32 = 100_000;

/// What a token shares with others of the same grant: a row of
/// `audit_grants` (client id, subject, scope, dialect, kid).
type Grant<'a> = [&'a str; GRANT_COLUMNS];

fn grant_of(e: &AuditEntry) -> Grant<'_> {
    [e.client_id(), e.subject(), e.scope(), e.dialect(), e.kid()]
}

/// An `audit_grants` row as read back after its insert.
type GrantRow = (i64, String, String, String, String, String);

/// `rows` parenthesised groups of `columns` placeholders: the VALUES of a
/// multi-row statement whose only parameters they are.
fn value_rows<DB: Backend>(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", DB::placeholders(i * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

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
        if records.is_empty() {
            return Ok(());
        }
        // In jti order, a batch's rows append to the jti index's right edge
        // (a jti starts with its issue second) instead of landing all over
        // the second's pages: with the pool's small page cache those pages
        // were read back and spilled again and again (BENCHMARKS.md).
        let mut records: Vec<&AuditEntry> = records.iter().collect();
        records.sort_unstable_by(|a, b| a.jti().cmp(b.jti()));
        // The batch's distinct grants, and for each record which one it is.
        let mut index: HashMap<Grant<'_>, usize> = HashMap::new();
        let mut grants: Vec<Grant<'_>> = Vec::new();
        let slots: Vec<usize> = records
            .iter()
            .map(|r| {
                *index.entry(grant_of(r)).or_insert_with_key(|g| {
                    grants.push(*g);
                    grants.len() - 1
                })
            })
            .collect();
        let mut ids: Vec<Option<i64>> = vec![None; grants.len()];
        // Every instance inserts new grants in the same order: two batches
        // meeting the same two new grants in opposite orders would each
        // wait on the other's row (a deadlock PostgreSQL breaks by failing
        // one of them).
        grants.sort_unstable();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for chunk in grants.chunks(INSERT_CHUNK) {
            // A grant is written once, by whichever batch or instance meets
            // it first; the rest find it.
            let values = value_rows::<DB>(chunk.len(), GRANT_COLUMNS);
            let insert = format!(
                "INSERT INTO audit_grants (client_id, subject, scope, dialect, kid) \
                 VALUES {values} ON CONFLICT DO NOTHING"
            );
            // A second's distinct grants are a different number each time:
            // these statements are not worth keeping prepared.
            let mut query = sqlx::query::<DB>(&insert).persistent(false);
            for field in chunk.iter().flatten() {
                query = query.bind(*field);
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
            let select = format!(
                "SELECT id, client_id, subject, scope, dialect, kid FROM audit_grants \
                 WHERE (client_id, subject, scope, dialect, kid) IN (VALUES {values})"
            );
            let mut query = sqlx::query_as::<DB, GrantRow>(&select).persistent(false);
            for field in chunk.iter().flatten() {
                query = query.bind(*field);
            }
            for (id, c, s, sc, d, k) in query.fetch_all(&mut *tx).await.map_err(map_err)? {
                let key = [c.as_str(), s.as_str(), sc.as_str(), d.as_str(), k.as_str()];
                if let Some(&slot) = index.get(&key) {
                    ids[slot] = Some(id);
                }
            }
        }
        let ids: Vec<i64> = ids.into_iter().collect::<Option<_>>().ok_or_else(|| {
            StoreError::Unavailable(anyhow!("an audit grant was not found after its insert"))
        })?;
        for (chunk, slots) in records.chunks(INSERT_CHUNK).zip(slots.chunks(INSERT_CHUNK)) {
            // A batch retried after a commit whose answer was lost must not
            // fail on the rows that made it.
            let sql = format!(
                "INSERT INTO audit_issued (jti, grant_id, iat, exp, address) \
                 VALUES {} ON CONFLICT (jti) DO NOTHING",
                value_rows::<DB>(chunk.len(), COLUMNS)
            );
            // Only a full chunk's statement is kept prepared: it is reused
            // every second. A batch's last chunk has a size of its own each
            // time, and sqlx would keep up to 100 such statements, each of
            // up to 5,000 parameters, prepared on every connection.
            let mut query = sqlx::query::<DB>(&sql).persistent(chunk.len() == INSERT_CHUNK);
            for (r, slot) in chunk.iter().zip(slots) {
                query = query
                    .bind(r.jti())
                    .bind(ids[*slot])
                    .bind(r.iat())
                    .bind(r.exp())
                    .bind(r.address());
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_issued WHERE iat < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        // Then the grants no token row needs. A batch being written may have
        // found a grant and not yet committed its tokens: every batch first
        // inserts into audit_grants, so with writers of that table locked
        // out (PostgreSQL; SQLite has one writer at a time) no batch is
        // between its lookup and its commit while this one looks.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(lock) = DB::lock_out_writers("audit_grants") {
            sqlx::query(&lock)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(
            "DELETE FROM audit_grants WHERE NOT EXISTS \
             (SELECT 1 FROM audit_issued t WHERE t.grant_id = audit_grants.id)",
        )
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
