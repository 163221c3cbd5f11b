//! Users (`users`) and their refresh tokens (`refresh_tokens`, grouped in
//! rotation families): the [`UserStore`] port of the password and
//! refresh_token grants.

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::backend::{corrupt, map_err, Backend, SqlStore, Value};
use crate::oauth::{
    ClientId, NewRefreshToken, RefreshOutcome, ScopeSet, StoreError, User, UserStore, Username,
};

/// A user row as read: name, hash, scopes, enabled, created, updated.
type UserRow = (String, String, Option<String>, bool, i64, i64);

/// The insert of one refresh token (a new family's first, or a successor).
const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
     (token_hash, family_id, client_id, username, scope, issued_at, expires_at, family_expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Types a user row.
fn user(
    (username, phc, scopes, enabled, created_at, updated_at): UserRow,
) -> Result<User, StoreError> {
    Ok(User {
        username: Username::parse(&username).map_err(|_| corrupt("username"))?,
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

#[async_trait::async_trait]
impl<DB> UserStore for SqlStore<DB>
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
    async fn get_user(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT username, phc, scopes, enabled, created_at, updated_at \
             FROM users WHERE username = $1",
        )
        .bind(username.as_ref())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(user).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT username, phc, scopes, enabled, created_at, updated_at \
             FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(user).collect()
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (username, phc, scopes, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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

    async fn update_user(&self, u: &User) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let old: Option<(String, bool)> =
            sqlx::query_as("SELECT phc, enabled FROM users WHERE username = $1")
                .bind(u.username.as_ref())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some((old_phc, _)) = old else {
            return Err(StoreError::NotFound);
        };
        sqlx::query(
            "UPDATE users SET phc = $2, scopes = $3, enabled = $4, updated_at = $5 \
             WHERE username = $1",
        )
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

    async fn delete_user(&self, username: &Username) -> Result<(), StoreError> {
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
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    }

    async fn refresh_token_owner(&self, hash: &str) -> Result<Option<ClientId>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT client_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        row.map(|(id,)| ClientId::parse(&id).map_err(|_| corrupt("refresh token's client id")))
            .transpose()
    }

    async fn revoke_refresh_family(&self, hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked = TRUE \
             WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        )
        .bind(hash)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn insert_refresh_token(&self, t: &NewRefreshToken) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Expired tokens are useless even as reuse evidence after a day.
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(t.issued_at - 86_400)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(INSERT_REFRESH)
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
        client: &ClientId,
        now: i64,
        next_hash: &str,
        next_expires_at: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The conditional UPDATE is the single-use guarantee: of two
        // concurrent uses, the second finds `used_at` already set.
        let spent: Option<(String, String, String, i64)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND revoked = FALSE AND expires_at > $2 \
             AND client_id = $3 \
             AND EXISTS (SELECT 1 FROM users u \
                         WHERE u.username = refresh_tokens.username AND u.enabled = TRUE) \
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
            sqlx::query(INSERT_REFRESH)
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
            let username = Username::parse(&username).map_err(|_| corrupt("username"))?;
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
