//! The queries both adapters share. SQLite and PostgreSQL accept the same
//! SQL here (`$n` placeholders, `ON CONFLICT`, `RETURNING`), so the
//! implementation is written once and stamped out per backend by
//! [`sql_store!`]: each backend keeps its own type, pool and migrations,
//! and no query site branches on the backend.

use std::collections::BTreeSet;

use crate::keys::{Alg, KeyRecord, KeyState};
use crate::oauth::{
    parse_audiences, parse_list, Change, Client, ClientId, ScopeSet, StoreError, StoredSecret,
};

/// Maps a sqlx error to the core's store error.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Unavailable(e.into()),
    }
}

/// Change-log rows older than this are pruned on each write; an instance
/// that was cut off longer than this drops its whole cache on reconnection.
pub(crate) const CHANGE_RETENTION_SECS: i64 = 3600;

/// A client row as read, before typing.
pub(crate) struct ClientRow {
    pub client_id: String,
    pub name: Option<String>,
    pub scopes: String,
    pub default_scopes: Option<String>,
    pub ttl_seconds: Option<i64>,
    pub audience: Option<String>,
    pub allowed_audiences: Option<String>,
    pub grants: String,
    pub auth_methods: String,
    pub dialects: String,
    pub token_alg: String,
    pub can_introspect: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("stored client has an invalid {what}"))
}

impl ClientRow {
    pub(crate) fn into_client(self, secrets: Vec<StoredSecret>) -> Result<Client, StoreError> {
        Ok(Client {
            id: ClientId::parse(&self.client_id).map_err(|_| corrupt("id"))?,
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
pub(crate) fn audiences(set: &BTreeSet<String>) -> Option<String> {
    (!set.is_empty()).then(|| set.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
}

/// Renders a dialect list as the store keeps it: comma-separated.
pub(crate) fn dialects(set: &BTreeSet<String>) -> String {
    set.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

/// Renders a set as the comma-separated list the store keeps.
pub(crate) fn join<T>(set: &BTreeSet<T>, name: fn(&T) -> &'static str) -> String {
    set.iter().map(name).collect::<Vec<_>>().join(",")
}

/// Types a change-log row.
pub(crate) fn change(kind: &str, subject: Option<String>) -> Change {
    match (kind, subject) {
        ("client", Some(id)) => ClientId::parse(&id).map_or(Change::All, Change::Client),
        ("keys", _) => Change::Keys,
        ("revoked", Some(jti)) => Change::Revoked(jti),
        ("faults", _) => Change::Faults,
        _ => Change::All,
    }
}

/// The change-log columns of a change.
pub(crate) fn change_columns(change: &Change) -> (&'static str, Option<String>) {
    match change {
        Change::Client(id) => ("client", Some(id.as_ref().to_owned())),
        Change::Keys => ("keys", None),
        Change::Revoked(jti) => ("revoked", Some(jti.clone())),
        Change::Faults => ("faults", None),
        Change::All => ("all", None),
    }
}

/// Types a user row.
pub(crate) fn user(
    (username, phc, scopes, enabled, created_at, updated_at): (
        String,
        String,
        Option<String>,
        bool,
        i64,
        i64,
    ),
) -> Result<crate::oauth::User, StoreError> {
    Ok(crate::oauth::User {
        username: crate::oauth::Username::parse(&username).map_err(|_| corrupt("username"))?,
        phc,
        scopes: scopes
            .map(|s| ScopeSet::parse(&s))
            .transpose()
            .map_err(|_| corrupt("user scope"))?,
        enabled,
        created_at,
        updated_at,
    })
}

/// Types a key row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn key_record(
    kid: String,
    alg: String,
    state: String,
    public_jwk: String,
    sealed_private_key: Option<Vec<u8>>,
    created_at: i64,
    activated_at: Option<i64>,
    retiring_at: Option<i64>,
) -> anyhow::Result<KeyRecord> {
    Ok(KeyRecord {
        kid,
        alg: alg.parse()?,
        state: state.parse::<KeyState>()?,
        public_jwk,
        sealed_private_key,
        created_at,
        activated_at,
        retiring_at,
    })
}

/// A fault row as read, before typing.
pub(crate) type FaultRow = (
    String,
    String,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    i64,
    i64,
);

/// Types a fault row.
pub(crate) fn fault(
    (client_id, kind, remaining, ratio, seed, generation, created_at): FaultRow,
) -> Result<crate::sandbox::FaultRecord, StoreError> {
    Ok(crate::sandbox::FaultRecord {
        client_id: ClientId::parse(&client_id).map_err(|_| corrupt("fault client id"))?,
        kind: kind.parse().map_err(|_| corrupt("fault kind"))?,
        times: remaining.map(|n| u32::try_from(n.max(1)).unwrap_or(u32::MAX)),
        ratio,
        seed: seed.map(|s| s as u64),
        generation,
        created_at,
    })
}

/// Implements `ClientStore`, `KeyStore`, `UserStore` and `FaultStore` for a backend struct with a
/// `pool` field.
macro_rules! sql_store {
    ($store:ty) => {
        const CLIENT_COLUMNS: &str = "client_id, name, scopes, default_scopes, ttl_seconds, audience, \
             grants, auth_methods, token_alg, can_introspect, enabled, created_at, updated_at, \
             allowed_audiences, dialects";

        impl $store {
            async fn log_change(
                conn: &mut <<Self as $crate::store::Backend>::Db as sqlx::Database>::Connection,
                change: &$crate::oauth::Change,
                now: i64,
            ) -> Result<(), sqlx::Error> {
                let (kind, subject) = $crate::store::sql::change_columns(change);
                sqlx::query("INSERT INTO changes (kind, subject, at) VALUES ($1, $2, $3)")
                    .bind(kind)
                    .bind(subject)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM changes WHERE at < $1")
                    .bind(now - $crate::store::sql::CHANGE_RETENTION_SECS)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            async fn secrets_of(&self, ids: &[String]) -> Result<std::collections::HashMap<String, Vec<$crate::oauth::StoredSecret>>, sqlx::Error> {
                use sqlx::Row as _;
                let mut map: std::collections::HashMap<String, Vec<$crate::oauth::StoredSecret>> = Default::default();
                if ids.is_empty() {
                    return Ok(map);
                }
                let rows = if ids.len() == 1 {
                    sqlx::query(
                        "SELECT id, client_id, phc, created_at, expires_at, last_used_at \
                         FROM client_secrets WHERE client_id = $1 ORDER BY id DESC",
                    )
                    .bind(&ids[0])
                    .fetch_all(&self.pool)
                    .await?
                } else {
                    sqlx::query(
                        "SELECT id, client_id, phc, created_at, expires_at, last_used_at \
                         FROM client_secrets ORDER BY id DESC",
                    )
                    .fetch_all(&self.pool)
                    .await?
                };
                for r in rows {
                    map.entry(r.try_get("client_id")?).or_default().push($crate::oauth::StoredSecret {
                        id: r.try_get("id")?,
                        phc: r.try_get("phc")?,
                        created_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                        last_used_at: r.try_get("last_used_at")?,
                    });
                }
                Ok(map)
            }

            fn client_row(r: &<<Self as $crate::store::Backend>::Db as sqlx::Database>::Row) -> Result<$crate::store::sql::ClientRow, sqlx::Error> {
                use sqlx::Row as _;
                Ok($crate::store::sql::ClientRow {
                    client_id: r.try_get("client_id")?,
                    name: r.try_get("name")?,
                    scopes: r.try_get("scopes")?,
                    default_scopes: r.try_get("default_scopes")?,
                    ttl_seconds: r.try_get("ttl_seconds")?,
                    audience: r.try_get("audience")?,
                    allowed_audiences: r.try_get("allowed_audiences")?,
                    grants: r.try_get("grants")?,
                    auth_methods: r.try_get("auth_methods")?,
                    dialects: r.try_get("dialects")?,
                    token_alg: r.try_get("token_alg")?,
                    can_introspect: r.try_get("can_introspect")?,
                    enabled: r.try_get("enabled")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }
        }

        #[async_trait::async_trait]
        impl $crate::oauth::ClientStore for $store {
            async fn ping(&self) -> Result<(), $crate::oauth::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err($crate::store::sql::map_err)?;
                Ok(())
            }

            async fn latest_change(&self) -> Result<i64, $crate::oauth::StoreError> {
                let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM changes")
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)?;
                Ok(seq.unwrap_or(0))
            }

            async fn changes_since(&self, after: i64) -> Result<Vec<(i64, $crate::oauth::Change)>, $crate::oauth::StoreError> {
                let rows: Vec<(i64, String, Option<String>)> =
                    sqlx::query_as("SELECT seq, kind, subject FROM changes WHERE seq > $1 ORDER BY seq")
                        .bind(after)
                        .fetch_all(&self.pool)
                        .await
                        .map_err($crate::store::sql::map_err)?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, kind, subject)| (seq, $crate::store::sql::change(&kind, subject)))
                    .collect())
            }

            async fn record_change(&self, change: &$crate::oauth::Change, now: i64) -> Result<(), $crate::oauth::StoreError> {
                let mut conn = self.pool.acquire().await.map_err($crate::store::sql::map_err)?;
                Self::log_change(&mut conn, change, now).await.map_err($crate::store::sql::map_err)
            }

            async fn get_client(&self, id: &$crate::oauth::ClientId) -> Result<Option<$crate::oauth::Client>, $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let row = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"))
                    .bind(id.as_ref())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let row = Self::client_row(&row).map_err(map_err)?;
                let mut secrets = self.secrets_of(std::slice::from_ref(&row.client_id)).await.map_err(map_err)?;
                let secrets = secrets.remove(&row.client_id).unwrap_or_default();
                row.into_client(secrets).map(Some)
            }

            async fn list_clients(&self) -> Result<Vec<$crate::oauth::Client>, $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let rows = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                let rows = rows.iter().map(Self::client_row).collect::<Result<Vec<_>, _>>().map_err(map_err)?;
                let ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
                let mut secrets = self.secrets_of(&ids).await.map_err(map_err)?;
                rows.into_iter()
                    .map(|r| {
                        let s = secrets.remove(&r.client_id).unwrap_or_default();
                        r.into_client(s)
                    })
                    .collect()
            }

            async fn create_client(&self, c: &$crate::oauth::Client) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::{join, map_err};
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(&format!(
                    "INSERT INTO clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
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
                .bind($crate::store::sql::audiences(&c.allowed_audiences))
                .bind($crate::store::sql::dialects(&c.dialects))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                for s in &c.secrets {
                    sqlx::query(
                        "INSERT INTO client_secrets (client_id, phc, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(c.id.as_ref())
                    .bind(&s.phc)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                Self::log_change(&mut *tx, &$crate::oauth::Change::Client(c.id.clone()), c.updated_at)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn update_client(&self, c: &$crate::oauth::Client) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::{join, map_err};
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let done = sqlx::query(
                    "UPDATE clients SET name = $2, scopes = $3, default_scopes = $4, ttl_seconds = $5, \
                     audience = $6, grants = $7, auth_methods = $8, token_alg = $9, can_introspect = $10, \
                     enabled = $11, updated_at = $12, allowed_audiences = $13, dialects = $14 WHERE client_id = $1",
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
                .bind($crate::store::sql::audiences(&c.allowed_audiences))
                .bind($crate::store::sql::dialects(&c.dialects))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err($crate::oauth::StoreError::NotFound);
                }
                Self::log_change(&mut *tx, &$crate::oauth::Change::Client(c.id.clone()), c.updated_at)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn delete_client(&self, id: &$crate::oauth::ClientId, now: i64) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query("DELETE FROM refresh_tokens WHERE client_id = $1")
                    .bind(id.as_ref())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query("DELETE FROM client_secrets WHERE client_id = $1")
                    .bind(id.as_ref())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(id.as_ref())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err($crate::oauth::StoreError::NotFound);
                }
                Self::log_change(&mut *tx, &$crate::oauth::Change::Client(id.clone()), now)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn rotate_secret(
                &self,
                id: &$crate::oauth::ClientId,
                phc: &str,
                now: i64,
                old_expire_at: i64,
            ) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let touched = sqlx::query("UPDATE clients SET updated_at = $2 WHERE client_id = $1")
                    .bind(id.as_ref())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if touched.rows_affected() == 0 {
                    return Err($crate::oauth::StoreError::NotFound);
                }
                // At most two live secrets (oauth::auth::MAX_LIVE_SECRETS):
                // an older secret still in a grace period ends now, the
                // current one gets the new grace period.
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
                sqlx::query("DELETE FROM client_secrets WHERE client_id = $1 AND expires_at IS NOT NULL AND expires_at < $2")
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
                Self::log_change(&mut *tx, &$crate::oauth::Change::Client(id.clone()), now)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn record_secret_use(&self, uses: &[(i64, i64)]) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
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

            async fn revoke_token(&self, jti: &str, exp: i64, now: i64) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
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
                if done.rows_affected() > 0 {
                    Self::log_change(&mut *tx, &$crate::oauth::Change::Revoked(jti.to_owned()), now)
                        .await
                        .map_err(map_err)?;
                }
                sqlx::query("DELETE FROM revoked_tokens WHERE exp < $1")
                    .bind(now - $crate::oauth::REVOCATION_PRUNE_MARGIN_SECS)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn revoked_tokens(&self, now: i64) -> Result<Vec<(String, i64)>, $crate::oauth::StoreError> {
                sqlx::query_as("SELECT jti, exp FROM revoked_tokens WHERE exp > $1")
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)
            }

            async fn is_revoked(&self, jti: &str) -> Result<bool, $crate::oauth::StoreError> {
                let row: Option<(String,)> = sqlx::query_as("SELECT jti FROM revoked_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)?;
                Ok(row.is_some())
            }

            async fn prune_revocations(&self, before: i64) -> Result<(), $crate::oauth::StoreError> {
                sqlx::query("DELETE FROM revoked_tokens WHERE exp < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::oauth::UserStore for $store {
            async fn get_user(&self, username: &$crate::oauth::Username) -> Result<Option<$crate::oauth::User>, $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let row: Option<(String, String, Option<String>, bool, i64, i64)> = sqlx::query_as(
                    "SELECT username, phc, scopes, enabled, created_at, updated_at FROM users WHERE username = $1",
                )
                .bind(username.as_ref())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map($crate::store::sql::user).transpose()
            }

            async fn list_users(&self) -> Result<Vec<$crate::oauth::User>, $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let rows: Vec<(String, String, Option<String>, bool, i64, i64)> = sqlx::query_as(
                    "SELECT username, phc, scopes, enabled, created_at, updated_at FROM users ORDER BY username",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map($crate::store::sql::user).collect()
            }

            async fn create_user(&self, u: &$crate::oauth::User) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                sqlx::query(
                    "INSERT INTO users (username, phc, scopes, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(u.username.as_ref())
                .bind(&u.phc)
                .bind(u.scopes.as_ref().map(|s| s.to_string()))
                .bind(u.enabled)
                .bind(u.created_at)
                .bind(u.updated_at)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn update_user(&self, u: &$crate::oauth::User) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let old: Option<(String, bool)> = sqlx::query_as("SELECT phc, enabled FROM users WHERE username = $1")
                    .bind(u.username.as_ref())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let Some((old_phc, _)) = old else {
                    return Err($crate::oauth::StoreError::NotFound);
                };
                sqlx::query("UPDATE users SET phc = $2, scopes = $3, enabled = $4, updated_at = $5 WHERE username = $1")
                    .bind(u.username.as_ref())
                    .bind(&u.phc)
                    .bind(u.scopes.as_ref().map(|s| s.to_string()))
                    .bind(u.enabled)
                    .bind(u.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                // A disabled user or a new password ends every session.
                if !u.enabled || old_phc != u.phc {
                    sqlx::query("UPDATE refresh_tokens SET revoked = TRUE WHERE username = $1")
                        .bind(u.username.as_ref())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn delete_user(&self, username: &$crate::oauth::Username) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query("DELETE FROM refresh_tokens WHERE username = $1")
                    .bind(username.as_ref())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let done = sqlx::query("DELETE FROM users WHERE username = $1")
                    .bind(username.as_ref())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err($crate::oauth::StoreError::NotFound);
                }
                tx.commit().await.map_err(map_err)
            }

            async fn refresh_token_owner(&self, hash: &str) -> Result<Option<$crate::oauth::ClientId>, $crate::oauth::StoreError> {
                let row: Option<(String,)> = sqlx::query_as("SELECT client_id FROM refresh_tokens WHERE token_hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::store::sql::map_err)?;
                row.map(|(id,)| {
                    $crate::oauth::ClientId::parse(&id)
                        .map_err(|_| $crate::oauth::StoreError::Unavailable(anyhow::anyhow!("stored refresh token has an invalid client id")))
                })
                .transpose()
            }

            async fn revoke_refresh_family(&self, hash: &str) -> Result<(), $crate::oauth::StoreError> {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE \
                     WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
                )
                .bind(hash)
                .execute(&self.pool)
                .await
                .map_err($crate::store::sql::map_err)?;
                Ok(())
            }

            async fn insert_refresh_token(&self, t: &$crate::oauth::NewRefreshToken) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                // Expired tokens are useless even as reuse evidence after a day.
                sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                    .bind(t.issued_at - 86_400)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, username, scope, issued_at, expires_at, family_expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&t.hash)
                .bind(&t.family_id)
                .bind(t.client_id.as_ref())
                .bind(t.username.as_ref())
                .bind(&t.scope)
                .bind(t.issued_at)
                .bind(t.expires_at.min(t.family_expires_at))
                .bind(t.family_expires_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn use_refresh_token(
                &self,
                hash: &str,
                client: &$crate::oauth::ClientId,
                now: i64,
                next_hash: &str,
                next_expires_at: i64,
            ) -> Result<$crate::oauth::RefreshOutcome, $crate::oauth::StoreError> {
                use $crate::oauth::RefreshOutcome;
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                // The conditional UPDATE is the single-use guarantee: of two
                // concurrent uses, the second finds `used_at` already set.
                let spent: Option<(String, String, String, i64)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND revoked = FALSE AND expires_at > $2 \
                     AND client_id = $3 \
                     AND EXISTS (SELECT 1 FROM users u WHERE u.username = refresh_tokens.username AND u.enabled = TRUE) \
                     RETURNING family_id, username, scope, COALESCE(family_expires_at, expires_at)",
                )
                .bind(hash)
                .bind(now)
                .bind(client.as_ref())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                if let Some((family, username, scope, family_expires_at)) = spent {
                    // RFC 9700 §4.14.2: rotation renews the token, never the
                    // family's absolute end.
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, username, scope, issued_at, expires_at, family_expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(next_hash)
                    .bind(&family)
                    .bind(client.as_ref())
                    .bind(&username)
                    .bind(&scope)
                    .bind(now)
                    .bind(next_expires_at.min(family_expires_at))
                    .bind(family_expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    let username = $crate::oauth::Username::parse(&username)
                        .map_err(|_| $crate::oauth::StoreError::Unavailable(anyhow::anyhow!("stored user has an invalid name")))?;
                    return Ok(RefreshOutcome::Rotated { username, scope });
                }
                let reused: Option<(String,)> = sqlx::query_as(
                    "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
                )
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let outcome = match reused {
                    Some((family,)) => {
                        sqlx::query("UPDATE refresh_tokens SET revoked = TRUE WHERE family_id = $1")
                            .bind(&family)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                        RefreshOutcome::Reused
                    }
                    None => RefreshOutcome::Invalid,
                };
                tx.commit().await.map_err(map_err)?;
                Ok(outcome)
            }
        }

        #[async_trait::async_trait]
        impl $crate::keys::KeyStore for $store {
            async fn list_keys(&self) -> anyhow::Result<Vec<$crate::keys::KeyRecord>> {
                let rows: Vec<(String, String, String, String, Option<Vec<u8>>, i64, Option<i64>, Option<i64>)> =
                    sqlx::query_as(
                        "SELECT kid, alg, state, public_jwk, sealed_private_key, created_at, activated_at, retiring_at \
                         FROM signing_keys ORDER BY created_at DESC, kid",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter()
                    .map(|(a, b, c, d, e, f, g, h)| $crate::store::sql::key_record(a, b, c, d, e, f, g, h))
                    .collect()
            }

            async fn apply_key_changes(
                &self,
                new: Option<&$crate::keys::KeyRecord>,
                changes: &[(String, $crate::keys::KeyState, i64)],
            ) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut last = 0;
                if let Some(k) = new {
                    sqlx::query(
                        "INSERT INTO signing_keys (kid, alg, state, public_jwk, sealed_private_key, created_at, activated_at, retiring_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
                    .await?;
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
                        .await?;
                    anyhow::ensure!(done.rows_affected() == 1, "no key with kid {kid}");
                    last = last.max(*at);
                }
                Self::log_change(&mut *tx, &$crate::oauth::Change::Keys, last).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_claims_keys(&self) -> anyhow::Result<Vec<$crate::keys::SealedClaimsKey>> {
                let rows: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
                    "SELECT kid, sealed_key, created_at FROM claims_keys ORDER BY created_at, kid",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(kid, sealed, created_at)| $crate::keys::SealedClaimsKey { kid, sealed, created_at })
                    .collect())
            }

            async fn insert_claims_key(&self, k: &$crate::keys::SealedClaimsKey) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO claims_keys (kid, sealed_key, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&k.kid)
                .bind(&k.sealed)
                .bind(k.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
        #[async_trait::async_trait]
        impl $crate::sandbox::FaultStore for $store {
            async fn list_faults(&self) -> Result<Vec<$crate::sandbox::FaultRecord>, $crate::oauth::StoreError> {
                let rows: Vec<$crate::store::sql::FaultRow> = sqlx::query_as(
                    "SELECT client_id, kind, remaining, ratio, seed, generation, created_at \
                     FROM sandbox_faults ORDER BY client_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::sql::map_err)?;
                rows.into_iter().map($crate::store::sql::fault).collect()
            }

            async fn set_fault(&self, f: &$crate::sandbox::FaultRecord) -> Result<(), $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                sqlx::query(
                    "INSERT INTO sandbox_faults (client_id, kind, remaining, ratio, seed, generation, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (client_id) DO UPDATE SET kind = excluded.kind, remaining = excluded.remaining, \
                     ratio = excluded.ratio, seed = excluded.seed, generation = excluded.generation, \
                     created_at = excluded.created_at",
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
                Self::log_change(&mut *tx, &$crate::oauth::Change::Faults, f.created_at)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn clear_faults(&self, client: Option<&$crate::oauth::ClientId>, now: i64) -> Result<u64, $crate::oauth::StoreError> {
                use $crate::store::sql::map_err;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let done = match client {
                    Some(id) => sqlx::query("DELETE FROM sandbox_faults WHERE client_id = $1")
                        .bind(id.as_ref())
                        .execute(&mut *tx)
                        .await,
                    None => sqlx::query("DELETE FROM sandbox_faults").execute(&mut *tx).await,
                }
                .map_err(map_err)?;
                Self::log_change(&mut *tx, &$crate::oauth::Change::Faults, now)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use sql_store;
