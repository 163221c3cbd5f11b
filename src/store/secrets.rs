//! Client secrets (`client_secrets`): argon2 hashes with their grace
//! periods and last-use times. A client's secrets are written with the
//! client (`clients.rs`) and read with it.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{map_err, Backend, SqlStore, Value};
use crate::oauth::{ClientId, StoreError, StoredSecret};
use crate::sync::Change;

/// Client ids per `IN (...)` list: far below SQLite's and PostgreSQL's bind
/// limits, however many clients there are.
const IDS_PER_QUERY: usize = 1000;

/// A secret row as read.
#[derive(sqlx::FromRow)]
struct SecretRow {
    id: i64,
    client_id: String,
    phc: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

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
    /// The secrets of the clients `ids` (and of no other), newest first.
    pub(super) async fn secrets_of(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<StoredSecret>>, StoreError> {
        let mut map: HashMap<String, Vec<StoredSecret>> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT id, client_id, phc, created_at, expires_at, last_used_at \
                 FROM client_secrets WHERE client_id IN ({}) ORDER BY id DESC",
                DB::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<DB, SecretRow>(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
            for r in rows {
                map.entry(r.client_id).or_default().push(StoredSecret {
                    id: r.id,
                    phc: r.phc,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                    last_used_at: r.last_used_at,
                });
            }
        }
        Ok(map)
    }

    /// Inserts a secret of a client being created, on the caller's
    /// transaction.
    pub(super) async fn insert_secret(
        conn: &mut DB::Connection,
        client: &ClientId,
        s: &StoredSecret,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO client_secrets (client_id, phc, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(client.as_ref())
        .bind(&s.phc)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    /// `ClientStore::rotate_secret`.
    pub(super) async fn rotate(
        &self,
        id: &ClientId,
        phc: &str,
        now: i64,
        old_expire_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let touched = sqlx::query("UPDATE clients SET updated_at = $2 WHERE client_id = $1")
            .bind(id.as_ref())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if DB::rows_affected(&touched) == 0 {
            return Err(StoreError::NotFound);
        }
        // At most two live secrets (oauth::auth::MAX_LIVE_SECRETS): an
        // older secret still in a grace period ends now, the current one
        // gets the new grace period.
        sqlx::query(
            "UPDATE client_secrets SET expires_at = $2 \
             WHERE client_id = $1 AND expires_at IS NOT NULL AND expires_at > $2",
        )
        .bind(id.as_ref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "UPDATE client_secrets SET expires_at = $2 \
             WHERE client_id = $1 AND expires_at IS NULL",
        )
        .bind(id.as_ref())
        .bind(old_expire_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // Secrets long expired are of no use even to `client show`.
        sqlx::query(
            "DELETE FROM client_secrets \
             WHERE client_id = $1 AND expires_at IS NOT NULL AND expires_at < $2",
        )
        .bind(id.as_ref())
        .bind(now - 86_400)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("INSERT INTO client_secrets (client_id, phc, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_ref())
            .bind(phc)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Self::log_change(&mut tx, &Change::Client(id.clone()), now).await?;
        tx.commit().await.map_err(map_err)
    }

    /// `ClientStore::record_secret_use`: not a change, so nothing is
    /// appended to the change log.
    pub(super) async fn record_uses(&self, uses: &[(i64, i64)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for (id, at) in uses {
            sqlx::query("UPDATE client_secrets SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::oauth::{Client, ClientStore, ScopeSet};
    use crate::store::{PoolSettings, SqliteStore};

    fn client(id: &str) -> Client {
        Client {
            id: ClientId::parse(id).unwrap(),
            name: None,
            scopes: ScopeSet::parse("transaction").unwrap(),
            default_scopes: None,
            ttl: None,
            audience: None,
            allowed_audiences: BTreeSet::new(),
            grants: BTreeSet::new(),
            auth_methods: BTreeSet::new(),
            dialects: Default::default(),
            alg: crate::keys::Alg::Es256,
            can_introspect: false,
            enabled: true,
            created_at: 1,
            updated_at: 1,
            secrets: vec![StoredSecret {
                id: 0,
                phc: format!("$phc${id}"),
                created_at: 1,
                expires_at: None,
                last_used_at: None,
            }],
        }
    }

    #[tokio::test]
    async fn secrets_of_several_clients_holds_theirs_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ficha.db", dir.path().display());
        let store = SqliteStore::connect(&url, &PoolSettings::default())
            .await
            .unwrap();
        for id in ["one", "two", "three"] {
            store.create_client(&client(id)).await.unwrap();
        }
        let asked = ["one".to_owned(), "three".to_owned()];
        let found = store.secrets_of(&asked).await.unwrap();
        let mut owners: Vec<&String> = found.keys().collect();
        owners.sort();
        assert_eq!(owners, ["one", "three"]);
        assert_eq!(found["three"][0].phc, "$phc$three");
        assert!(store.secrets_of(&[]).await.unwrap().is_empty());
    }
}
