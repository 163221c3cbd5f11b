//! The audit trail's rows: the [`AuditStore`] port. A token's own fields go
//! to `audit_issued`, what it shares with others of its grant (client,
//! subject, scope, dialect, kid) to `audit_grants`, once; the view
//! `audit_tokens` joins them back (migration 0009).
//!
//! A grant's id, once written or read, is kept ([`GrantIds`]): a batch then
//! writes only its tokens' rows, where it wrote or looked up every grant it
//! held (10,000 a second, with as many clients busy). An id stays good
//! until a prune deletes its grant; a prune that deletes any bumps
//! `audit_grant_generation` (migration 0010), and a batch that reads a new
//! generation forgets every id it kept.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::anyhow;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::audit::{
    AddressText, AuditBatch, AuditEntry, AuditQuery, AuditRecord, AuditStore, Grant, GRANT_FIELDS,
};
use crate::oauth::StoreError;

/// The binds of a token's row: jti, grant id, iat, exp, address.
const COLUMNS: usize = 5;

/// Rows per INSERT statement: 5 binds each stays far below SQLite's and
/// PostgreSQL's bind limits. A batch of several statements is still one
/// transaction, one write.
const INSERT_CHUNK: usize = 1000;

/// The rows `ficha audit list` may ask for at most.
const MAX_LIST: u32 = 100_000;

/// Grant ids kept at most; past it they are all forgotten and found again
/// (a grant is about 100 bytes here).
const MAX_GRANT_IDS: usize = 65_536;

/// Ids of `audit_grants` rows, as of one generation of its prunes.
#[derive(Debug, Default)]
pub(crate) struct GrantIds {
    generation: i64,
    ids: HashMap<Grant, i64>,
}

impl GrantIds {
    /// The ids known for `grants` (`None` for the others), forgetting them
    /// all first if the grants have been pruned since they were read.
    fn lookup(&mut self, generation: i64, grants: &[Grant]) -> Vec<Option<i64>> {
        if self.generation != generation {
            self.ids.clear();
            self.generation = generation;
        }
        grants.iter().map(|g| self.ids.get(g).copied()).collect()
    }

    /// Keeps ids read under `generation`, once their transaction committed.
    fn keep(&mut self, generation: i64, found: Vec<(Grant, i64)>) {
        if self.generation != generation {
            return;
        }
        if self.ids.len() + found.len() > MAX_GRANT_IDS {
            self.ids.clear();
        }
        self.ids.extend(found);
    }
}

fn lock(ids: &Mutex<GrantIds>) -> std::sync::MutexGuard<'_, GrantIds> {
    // A panic while holding the lock leaves valid ids behind.
    ids.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An `audit_grants` row as read back after its insert.
type GrantRow = (i64, String, String, String, String, String);

/// `rows` parenthesised groups of `columns` placeholders: the VALUES of a
/// multi-row statement whose only parameters they are.
fn value_rows<DB: Backend>(rows: usize, columns: usize) -> String {
    // Written in place: built a row at a time with `format!` and joined,
    // a 1,000-row statement cost as much as binding its values.
    let mut sql = String::with_capacity(rows * columns * 6);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&DB::placeholders(i * columns + 1, columns));
        sql.push(')');
    }
    sql
}

/// The statement inserting `rows` tokens' rows.
fn insert_issued<DB: Backend>(rows: usize) -> String {
    // A batch retried after a commit whose answer was lost must not fail
    // on the rows that made it.
    format!(
        "INSERT INTO audit_issued (jti, grant_id, iat, exp, address) \
         VALUES {} ON CONFLICT (jti) DO NOTHING",
        value_rows::<DB>(rows, COLUMNS)
    )
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
    async fn insert_audit(&self, batch: &AuditBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with(DB::BEGIN_WRITE)
            .await
            .map_err(map_err)?;
        // Before the generation is read: a prune then either committed
        // already (its new generation is read below) or waits for this
        // batch's commit, and sees its tokens.
        if let Some(join) = DB::join_writers("audit_grants") {
            sqlx::query(&join)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let (generation,): (i64,) = sqlx::query_as("SELECT generation FROM audit_grant_generation")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let grants = batch.grants();
        let mut ids = lock(&self.grant_ids).lookup(generation, grants);
        // The grants not known yet, in one order for every instance: two
        // batches meeting the same two new grants in opposite orders would
        // each wait on the other's row (a deadlock PostgreSQL breaks by
        // failing one of them).
        let mut new: Vec<usize> = (0..grants.len()).filter(|&i| ids[i].is_none()).collect();
        new.sort_unstable_by(|&a, &b| grants[a].cmp(&grants[b]));
        let mut found: Vec<(Grant, i64)> = Vec::with_capacity(new.len());
        for chunk in new.chunks(INSERT_CHUNK) {
            // A grant is written once, by whichever batch or instance meets
            // it first; the rest find it.
            let values = value_rows::<DB>(chunk.len(), GRANT_FIELDS);
            let insert = format!(
                "INSERT INTO audit_grants (client_id, subject, scope, dialect, kid) \
                 VALUES {values} ON CONFLICT DO NOTHING"
            );
            // A second's new grants are a different number each time: these
            // statements are not worth keeping prepared.
            let mut query = sqlx::query::<DB>(&insert).persistent(false);
            for &i in chunk {
                for field in grants[i].fields() {
                    query = query.bind(field);
                }
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
            let select = format!(
                "SELECT id, client_id, subject, scope, dialect, kid FROM audit_grants \
                 WHERE (client_id, subject, scope, dialect, kid) IN (VALUES {values})"
            );
            let mut query = sqlx::query_as::<DB, GrantRow>(&select).persistent(false);
            for &i in chunk {
                for field in grants[i].fields() {
                    query = query.bind(field);
                }
            }
            let rows = query.fetch_all(&mut *tx).await.map_err(map_err)?;
            let by_fields: HashMap<[&str; GRANT_FIELDS], usize> =
                chunk.iter().map(|&i| (grants[i].fields(), i)).collect();
            for (id, c, s, sc, d, k) in &rows {
                let key = [c.as_str(), s.as_str(), sc.as_str(), d.as_str(), k.as_str()];
                if let Some(&i) = by_fields.get(&key) {
                    ids[i] = Some(*id);
                    found.push((grants[i].clone(), *id));
                }
            }
        }
        let ids: Vec<i64> = ids.into_iter().collect::<Option<_>>().ok_or_else(|| {
            StoreError::Unavailable(anyhow!("an audit grant was not found after its insert"))
        })?;
        // In jti order, a batch's rows append to the jti index's right edge
        // (a jti starts with its issue second) instead of landing all over
        // the second's pages: with the pool's small page cache those pages
        // were read back and spilled again and again (BENCHMARKS.md).
        let mut records: Vec<&AuditEntry> = batch.entries().iter().collect();
        records.sort_unstable_by(|a, b| a.jti_bytes().cmp(b.jti_bytes()));
        let full_chunk = (records.len() >= INSERT_CHUNK).then(|| insert_issued::<DB>(INSERT_CHUNK));
        for chunk in records.chunks(INSERT_CHUNK) {
            let partial;
            let sql = match &full_chunk {
                Some(sql) if chunk.len() == INSERT_CHUNK => sql,
                _ => {
                    partial = insert_issued::<DB>(chunk.len());
                    &partial
                }
            };
            let addresses: Vec<Option<AddressText>> = chunk
                .iter()
                .map(|r| r.address().map(AddressText::new))
                .collect();
            // Only a full chunk's statement is kept prepared: it is reused
            // every second. A batch's last chunk has a size of its own each
            // time, and sqlx would keep up to 100 such statements, each of
            // up to 5,000 parameters, prepared on every connection.
            let mut query = sqlx::query::<DB>(sql).persistent(chunk.len() == INSERT_CHUNK);
            for (r, address) in chunk.iter().zip(&addresses) {
                query = query
                    .bind(r.jti())
                    .bind(ids[r.grant()])
                    .bind(r.iat())
                    .bind(r.exp())
                    .bind(address.as_ref().map(AddressText::as_str));
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        // Only now: the ids of grants this batch inserted exist once it
        // has committed.
        lock(&self.grant_ids).keep(generation, found);
        Ok(())
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
        let pruned = sqlx::query(
            "DELETE FROM audit_grants WHERE NOT EXISTS \
             (SELECT 1 FROM audit_issued t WHERE t.grant_id = audit_grants.id)",
        )
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // Every instance's kept grant ids may name a deleted grant now.
        if DB::rows_affected(&pruned) > 0 {
            sqlx::query("UPDATE audit_grant_generation SET generation = generation + 1")
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
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
