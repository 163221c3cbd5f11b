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
//!
//! Token rows are indexed only by time (migration 0011), so a grant keeps
//! its own `last_iat`, which a prune reads instead of looking for tokens.
//! A batch raises it [`LAST_IAT_AHEAD`] past its newest token, so that a
//! busy grant's row is rewritten once an hour, not every second.
//!
//! A batch's token rows go in short statements with rests between them
//! ([`MAX_PAUSE`]), so that a second's tokens do not take the database's
//! CPU from the token endpoint in one burst.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};
use tokio::time::Instant;

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::audit::{
    AddressText, AuditBatch, AuditEntry, AuditQuery, AuditRecord, AuditStore, Grant, GRANT_FIELDS,
    WRITE_EVERY,
};
use crate::oauth::StoreError;

/// The binds of a token's row: jti, grant id, iat, exp, address.
const COLUMNS: usize = 5;

/// Grants per statement (inserted, looked up or raised): far below SQLite's
/// and PostgreSQL's bind limits. These statements are rare: a grant's first
/// token, then once an hour.
const GRANT_CHUNK: usize = 1000;

/// Token rows per INSERT statement. Small, so that the database works in
/// short steps that the batch paces ([`MAX_PAUSE`]). A batch of several
/// statements is still one transaction, one write.
const ROW_CHUNK: usize = 100;

/// After each of a batch's token statements, the batch rests as long as
/// that statement took, up to this. A second's tokens written in 1,000-row
/// statements without rests took PostgreSQL's backend from the token
/// endpoint 11 ms at a time (11 µs a row): side by side (`bench/ab`), p99
/// was 13–15 ms with the trail on and 10 ms with it off; written 100 rows
/// at a time with rests, 10.3–10.7 ms. Neither change alone helped
/// (BENCHMARKS.md, which also has `bench/run`'s smaller gain).
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// A batch rests only within this much of its start: one that needs longer
/// (a slow database, a backlog after an outage) is written at full speed, so
/// pacing never makes the writer fall behind the tokens it is given. On
/// SQLite the batch holds the write lock while it rests: another writer (a
/// revocation, the CLI) waits at most this much longer for it.
const PACE_WITHIN: Duration = Duration::from_millis(WRITE_EVERY.as_millis() as u64 / 2);

/// How long a batch rests before its next token statement: as long as the
/// last one took (none before the first), at most [`MAX_PAUSE`], and not at
/// all once [`PACE_WITHIN`] has passed since the batch began.
fn rest(last_took: Duration, since_start: Duration) -> Duration {
    if since_start < PACE_WITHIN {
        last_took.min(MAX_PAUSE)
    } else {
        Duration::ZERO
    }
}

/// The rows `ficha audit list` may ask for at most.
const MAX_LIST: u32 = 100_000;

/// Grant ids kept at most; past it they are all forgotten and found again
/// (a grant is about 100 bytes here).
const MAX_GRANT_IDS: usize = 65_536;

/// How far past a batch's newest token a grant's `last_iat` is set. A
/// grant outlives its last token by at most this much; in exchange a grant
/// that issues every second has its row rewritten once an hour.
const LAST_IAT_AHEAD: i64 = 3600;

/// An `audit_grants` row as a batch needs it: its id and `last_iat`, an
/// upper bound of the iat of its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GrantRow {
    id: i64,
    last_iat: i64,
}

/// Ids of `audit_grants` rows, as of one generation of its prunes.
#[derive(Debug, Default)]
pub(crate) struct GrantIds {
    generation: i64,
    ids: HashMap<Grant, GrantRow>,
}

impl GrantIds {
    /// The rows known for `grants` (`None` for the others), forgetting them
    /// all first if the grants have been pruned since they were read.
    fn lookup(&mut self, generation: i64, grants: &[Grant]) -> Vec<Option<GrantRow>> {
        if self.generation != generation {
            self.ids.clear();
            self.generation = generation;
        }
        grants.iter().map(|g| self.ids.get(g).copied()).collect()
    }

    /// Keeps rows read or raised under `generation`, once their
    /// transaction committed.
    fn keep(&mut self, generation: i64, found: Vec<(Grant, GrantRow)>) {
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
type GrantFields = (i64, String, String, String, String, String, i64);

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
        for chunk in new.chunks(GRANT_CHUNK) {
            // A grant is written once, by whichever batch or instance meets
            // it first; the rest find it. Its `last_iat` is raised below.
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
                "SELECT id, client_id, subject, scope, dialect, kid, last_iat FROM audit_grants \
                 WHERE (client_id, subject, scope, dialect, kid) IN (VALUES {values})"
            );
            let mut query = sqlx::query_as::<DB, GrantFields>(&select).persistent(false);
            for &i in chunk {
                for field in grants[i].fields() {
                    query = query.bind(field);
                }
            }
            let rows = query.fetch_all(&mut *tx).await.map_err(map_err)?;
            let by_fields: HashMap<[&str; GRANT_FIELDS], usize> =
                chunk.iter().map(|&i| (grants[i].fields(), i)).collect();
            for (id, c, s, sc, d, k, last_iat) in &rows {
                let key = [c.as_str(), s.as_str(), sc.as_str(), d.as_str(), k.as_str()];
                if let Some(&i) = by_fields.get(&key) {
                    ids[i] = Some(GrantRow {
                        id: *id,
                        last_iat: *last_iat,
                    });
                }
            }
        }
        let mut rows: Vec<GrantRow> = ids.into_iter().collect::<Option<_>>().ok_or_else(|| {
            StoreError::Unavailable(anyhow!("an audit grant was not found after its insert"))
        })?;
        // Every grant's `last_iat` must cover its tokens before they are
        // written: a prune deletes a grant by it alone. Raised in id order,
        // one order for every instance, for the same reason as above.
        let newest = batch
            .entries()
            .iter()
            .map(AuditEntry::iat)
            .max()
            .unwrap_or(0);
        let bound = newest.saturating_add(LAST_IAT_AHEAD);
        let mut stale: Vec<usize> = (0..grants.len())
            .filter(|&i| rows[i].last_iat < newest)
            .collect();
        stale.sort_unstable_by_key(|&i| rows[i].id);
        for chunk in stale.chunks(GRANT_CHUNK) {
            // Never lowered: another instance may have raised it further.
            let raise = format!(
                "UPDATE audit_grants SET last_iat = {bound} WHERE last_iat < {bound} \
                 AND id IN ({})",
                DB::placeholders(1, chunk.len())
            );
            // The bound is written into the text, an integer: the ids'
            // placeholders must be the statement's only ones (SQLite's are
            // anonymous, `Backend::placeholders`).
            let mut query = sqlx::query::<DB>(&raise).persistent(false);
            for &i in chunk {
                query = query.bind(rows[i].id);
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        for &i in &stale {
            rows[i].last_iat = bound;
        }
        // What the kept rows learn: the grants found and those raised. A
        // kept `last_iat` may be lower than the row's, never higher.
        let mut learnt = new;
        learnt.extend_from_slice(&stale);
        learnt.sort_unstable();
        learnt.dedup();
        let found: Vec<(Grant, GrantRow)> = learnt
            .into_iter()
            .map(|i| (grants[i].clone(), rows[i]))
            .collect();
        // In jti order, a batch's rows append to the jti index's right edge
        // (a jti starts with its issue second) instead of landing all over
        // the second's pages: with the pool's small page cache those pages
        // were read back and spilled again and again (BENCHMARKS.md).
        let mut records: Vec<&AuditEntry> = batch.entries().iter().collect();
        records.sort_unstable_by(|a, b| a.jti_bytes().cmp(b.jti_bytes()));
        let full_chunk = (records.len() >= ROW_CHUNK).then(|| insert_issued::<DB>(ROW_CHUNK));
        let batch_started = Instant::now();
        let mut took = Duration::ZERO;
        for chunk in records.chunks(ROW_CHUNK) {
            let pause = rest(took, batch_started.elapsed());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let started = Instant::now();
            let partial;
            let sql = match &full_chunk {
                Some(sql) if chunk.len() == ROW_CHUNK => sql,
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
            // time, and sqlx would keep up to 100 such statements prepared
            // on every connection.
            let mut query = sqlx::query::<DB>(sql).persistent(chunk.len() == ROW_CHUNK);
            for (r, address) in chunk.iter().zip(&addresses) {
                query = query
                    .bind(r.jti())
                    .bind(rows[r.grant()].id)
                    .bind(r.iat())
                    .bind(r.exp())
                    .bind(address.as_ref().map(AddressText::as_str));
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
            took = started.elapsed();
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
        // Then the grants no token row needs: those whose tokens are all
        // older than `before`. A batch being written may have found a grant
        // and not yet committed its raised `last_iat`: every batch first
        // joins the writers of audit_grants, so with them locked out
        // (PostgreSQL; SQLite has one writer at a time) no batch is between
        // its lookup and its commit while this one deletes.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(lock) = DB::lock_out_writers("audit_grants") {
            sqlx::query(&lock)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let pruned = sqlx::query("DELETE FROM audit_grants WHERE last_iat < $1")
            .bind(before)
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
        // its index. The tables, not the view: a client's tokens are found
        // by scanning the (iat, grant_id) index for its grants' ids, which
        // the index itself holds. The unary `+` keeps SQLite from seeking
        // that index once per distinct iat for each grant (a skip-scan, four
        // times slower on a million rows than the scan).
        let mut sql = String::from(
            "SELECT t.jti, g.client_id, g.subject, g.scope, g.dialect, g.kid, \
             t.iat, t.exp, t.address \
             FROM audit_issued t JOIN audit_grants g ON g.id = t.grant_id WHERE 1 = 1",
        );
        let mut texts: Vec<&str> = Vec::new();
        let mut numbers: Vec<i64> = Vec::new();
        for (filter, close, value) in [
            (
                " AND +t.grant_id IN (SELECT id FROM audit_grants WHERE client_id = ",
                ")",
                query.client_id.as_deref(),
            ),
            (" AND t.jti = ", "", query.jti.as_deref()),
        ] {
            if let Some(v) = value {
                texts.push(v);
                sql.push_str(&format!("{filter}${}{close}", texts.len()));
            }
        }
        let limit = i64::from(query.limit.min(MAX_LIST));
        for (filter, value) in [
            (" AND t.iat >= ", query.since),
            (" AND t.iat < ", query.until),
            (" ORDER BY t.iat DESC, t.jti LIMIT ", Some(limit)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_rests_as_long_as_its_last_statement_took_only_early_on() {
        let ms = Duration::from_millis;
        assert_eq!(rest(Duration::ZERO, Duration::ZERO), Duration::ZERO);
        assert_eq!(rest(ms(3), ms(10)), ms(3));
        assert_eq!(rest(ms(300), ms(10)), MAX_PAUSE);
        // A slow database or a backlog: written at full speed past the
        // first half of the writer's second.
        assert_eq!(rest(ms(3), PACE_WITHIN), Duration::ZERO);
        assert_eq!(PACE_WITHIN, WRITE_EVERY / 2);
    }
}
