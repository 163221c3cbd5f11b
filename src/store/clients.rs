//! Clients (`clients`): the rows, their typing into the core's [`Client`],
//! and the [`ClientStore`] port, whose secret, change-log and denylist
//! methods live in `secrets.rs`, `changes.rs` and `revocations.rs`. Every
//! write appends to the change log in its own transaction.

use std::collections::BTreeSet;

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{corrupt, map_err, Backend, SqlStore, Value};
use crate::keys::Alg;
use crate::oauth::{
    parse_audiences, parse_list, Client, ClientId, ClientStore, DialectSet, ScopeSet, StoreError,
    StoredSecret,
};
use crate::sync::Change;

/// The columns of a client row, in [`ClientRow`]'s order of binding.
const CLIENT_COLUMNS: &str = "client_id, name, scopes, default_scopes, ttl_seconds, audience, \
     grants, auth_methods, token_alg, can_introspect, enabled, created_at, updated_at, \
     allowed_audiences, dialects";

/// A client row as read, before typing.
#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    name: Option<String>,
    scopes: String,
    default_scopes: Option<String>,
    ttl_seconds: Option<i64>,
    audience: Option<String>,
    allowed_audiences: Option<String>,
    grants: String,
    auth_methods: String,
    dialects: String,
    token_alg: String,
    can_introspect: bool,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl ClientRow {
    fn into_client(self, secrets: Vec<StoredSecret>) -> Result<Client, StoreError> {
        Ok(Client {
            id: ClientId::parse(&self.client_id).map_err(|_| corrupt("client id"))?,
            name: self.name,
            scopes: ScopeSet::parse(&self.scopes).map_err(|_| corrupt("scope"))?,
            default_scopes: self
                .default_scopes
                .map(|s| ScopeSet::parse(&s))
                .transpose()
                .map_err(|_| corrupt("default scope"))?,
            ttl: self
                .ttl_seconds
                .map(|t| u32::try_from(t).unwrap_or(u32::MAX)),
            audience: self.audience,
            allowed_audiences: parse_audiences(self.allowed_audiences.as_deref().unwrap_or(""))
                .map_err(|_| corrupt("audience list"))?,
            grants: parse_list(&self.grants).map_err(|_| corrupt("grant list"))?,
            auth_methods: parse_list(&self.auth_methods)
                .map_err(|_| corrupt("auth method list"))?,
            dialects: self
                .dialects
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            alg: self
                .token_alg
                .parse::<Alg>()
                .map_err(|_| corrupt("algorithm"))?,
            can_introspect: self.can_introspect,
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
            secrets,
        })
    }
}

/// Renders an audience list as the store keeps it: space-separated, `NULL`
/// when empty.
fn audiences(set: &BTreeSet<String>) -> Option<String> {
    (!set.is_empty()).then(|| set.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
}

/// Renders a dialect list as the store keeps it: comma-separated.
fn dialects(set: &DialectSet) -> String {
    set.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

/// Renders a set as the comma-separated list the store keeps.
fn join<T>(set: &BTreeSet<T>, name: fn(&T) -> &'static str) -> String {
    set.iter().map(name).collect::<Vec<_>>().join(",")
}

#[async_trait::async_trait]
impl<DB> ClientStore for SqlStore<DB>
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
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(id.as_ref())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut secrets = self
            .secrets_of(std::slice::from_ref(&row.client_id))
            .await?;
        let secrets = secrets.remove(&row.client_id).unwrap_or_default();
        row.into_client(secrets).map(Some)
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
        let mut secrets = self.secrets_of(&ids).await?;
        rows.into_iter()
            .map(|r| {
                let s = secrets.remove(&r.client_id).unwrap_or_default();
                r.into_client(s)
            })
            .collect()
    }

    async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(c.id.as_ref())
        .bind(&c.name)
        .bind(c.scopes.to_string())
        .bind(c.default_scopes.as_ref().map(|s| s.to_string()))
        .bind(c.ttl.map(i64::from))
        .bind(&c.audience)
        .bind(join(&c.grants, |g| g.as_str()))
        .bind(join(&c.auth_methods, |m| m.as_str()))
        .bind(c.alg.as_str())
        .bind(c.can_introspect)
        .bind(c.enabled)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(audiences(&c.allowed_audiences))
        .bind(dialects(&c.dialects))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        for s in &c.secrets {
            Self::insert_secret(&mut tx, &c.id, s).await?;
        }
        Self::log_change(&mut tx, &Change::Client(c.id.clone()), c.updated_at).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn update_client(&self, c: &Client) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE clients SET name = $2, scopes = $3, default_scopes = $4, ttl_seconds = $5, \
             audience = $6, grants = $7, auth_methods = $8, token_alg = $9, \
             can_introspect = $10, enabled = $11, updated_at = $12, allowed_audiences = $13, \
             dialects = $14 WHERE client_id = $1",
        )
        .bind(c.id.as_ref())
        .bind(&c.name)
        .bind(c.scopes.to_string())
        .bind(c.default_scopes.as_ref().map(|s| s.to_string()))
        .bind(c.ttl.map(i64::from))
        .bind(&c.audience)
        .bind(join(&c.grants, |g| g.as_str()))
        .bind(join(&c.auth_methods, |m| m.as_str()))
        .bind(c.alg.as_str())
        .bind(c.can_introspect)
        .bind(c.enabled)
        .bind(c.updated_at)
        .bind(audiences(&c.allowed_audiences))
        .bind(dialects(&c.dialects))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        Self::log_change(&mut tx, &Change::Client(c.id.clone()), c.updated_at).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_client(&self, id: &ClientId, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for sql in [
            "DELETE FROM refresh_tokens WHERE client_id = $1",
            "DELETE FROM client_secrets WHERE client_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.as_ref())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(id.as_ref())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        Self::log_change(&mut tx, &Change::Client(id.clone()), now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn rotate_secret(
        &self,
        id: &ClientId,
        phc: &str,
        now: i64,
        old_expire_at: i64,
    ) -> Result<(), StoreError> {
        self.rotate(id, phc, now, old_expire_at).await
    }

    async fn record_secret_use(&self, uses: &[(i64, i64)]) -> Result<(), StoreError> {
        self.record_uses(uses).await
    }

    async fn revoke_token(&self, jti: &str, exp: i64, now: i64) -> Result<(), StoreError> {
        self.insert_revocation(jti, exp, now).await
    }

    async fn revoked_tokens(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.live_revocations(now).await
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.find_revocation(jti).await
    }

    async fn prune_revocations(&self, before: i64) -> Result<(), StoreError> {
        self.delete_revocations(before).await
    }
}
