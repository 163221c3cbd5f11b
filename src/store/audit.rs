//! The audit trail's queries (`audit_tokens`), shared by both adapters the
//! way `sql.rs` shares the rest: written once, stamped out per backend by
//! [`audit_store!`]. Placeholders come from sqlx's `QueryBuilder`, which
//! numbers them as each backend wants.

/// Rows per INSERT statement: 9 binds each stays far below SQLite's and
/// PostgreSQL's bind limits. A batch of several statements is still one
/// transaction, one write.
pub(crate) const INSERT_CHUNK: usize = 1000;

/// The rows `ficha audit list` may ask for at most.
pub(crate) const MAX_LIST: u32 = 100_000;

/// A row as read.
pub(crate) type AuditRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
);

/// Implements `audit::AuditStore` for an adapter with a `pool` field.
macro_rules! audit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::audit::AuditStore for $store {
            async fn insert_audit(
                &self,
                records: &[$crate::audit::AuditRecord],
            ) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                for chunk in records.chunks($crate::store::audit::INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<<$store as $crate::store::Backend>::Db>::new(
                        "INSERT INTO audit_tokens \
                         (jti, client_id, subject, scope, dialect, kid, iat, exp, address) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.jti.clone())
                            .push_bind(r.client_id.clone())
                            .push_bind(r.subject.clone())
                            .push_bind(r.scope.clone())
                            .push_bind(r.dialect.clone())
                            .push_bind(r.kid.clone())
                            .push_bind(r.iat)
                            .push_bind(r.exp)
                            .push_bind(r.address.clone());
                    });
                    // A batch retried after a commit whose answer was lost
                    // must not fail on the rows that made it.
                    q.push(" ON CONFLICT (jti) DO NOTHING");
                    q.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn prune_audit(&self, before: i64) -> Result<u64, $crate::oauth::StoreError> {
                let done = sqlx::query("DELETE FROM audit_tokens WHERE iat < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)?;
                Ok(done.rows_affected())
            }

            async fn list_audit(
                &self,
                query: &$crate::audit::AuditQuery,
            ) -> Result<Vec<$crate::audit::AuditRecord>, $crate::oauth::StoreError> {
                let mut q = sqlx::QueryBuilder::<<$store as $crate::store::Backend>::Db>::new(
                    "SELECT jti, client_id, subject, scope, dialect, kid, iat, exp, address \
                     FROM audit_tokens WHERE 1 = 1",
                );
                if let Some(c) = &query.client_id {
                    q.push(" AND client_id = ").push_bind(c.clone());
                }
                if let Some(j) = &query.jti {
                    q.push(" AND jti = ").push_bind(j.clone());
                }
                if let Some(s) = query.since {
                    q.push(" AND iat >= ").push_bind(s);
                }
                if let Some(u) = query.until {
                    q.push(" AND iat < ").push_bind(u);
                }
                let limit = i64::from(query.limit.min($crate::store::audit::MAX_LIST));
                q.push(" ORDER BY iat DESC, jti LIMIT ").push_bind(limit);
                let rows: Vec<$crate::store::audit::AuditRow> = q
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(jti, client_id, subject, scope, dialect, kid, iat, exp, address)| {
                            $crate::audit::AuditRecord {
                                jti,
                                client_id,
                                subject,
                                scope,
                                dialect,
                                kid,
                                iat,
                                exp,
                                address,
                            }
                        },
                    )
                    .collect())
            }
        }
    };
}

pub(crate) use audit_store;
