//! The storage port: what the core needs from a database, as typed domain
//! values. `store/` implements it for SQLite and PostgreSQL; an in-memory
//! implementation serves the unit tests.

use async_trait::async_trait;

use super::client::{Client, ClientId};
use super::user::{NewRefreshToken, RefreshOutcome, User, Username};
pub use crate::store_error::StoreError;

/// Client storage. Every write also appends to the change log (`sync`) in
/// the same transaction, so other instances see it on their next poll.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// A trivial round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The client with this id, with all its secrets.
    async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Every client, ordered by id.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Inserts a client and its secrets; `Conflict` if the id is taken.
    async fn create_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Replaces a client's attributes (not its secrets); `NotFound` if absent.
    async fn update_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Deletes a client, its secrets and its refresh tokens (so that a
    /// client re-created under the same id inherits none); `NotFound` if
    /// absent.
    async fn delete_client(&self, id: &ClientId, now: i64) -> Result<(), StoreError>;
    /// Adds a new secret, makes the current one expire at `old_expire_at`
    /// (rotation with grace) and ends any older grace period at `now`, so
    /// that a client never has more than two live secrets.
    async fn rotate_secret(
        &self,
        id: &ClientId,
        phc: &str,
        now: i64,
        old_expire_at: i64,
    ) -> Result<(), StoreError>;
    /// Records last-use times `(secret id, at)`, batched by the caller; this
    /// is not a change and appends nothing to the change log.
    async fn record_secret_use(&self, uses: &[(i64, i64)]) -> Result<(), StoreError>;
    /// Puts `jti` on the denylist until `exp` and appends a revocation to
    /// the change log in the same transaction; revoking a token twice is
    /// not an error. Also prunes rows of tokens long expired.
    async fn revoke_token(&self, jti: &str, exp: i64, now: i64) -> Result<(), StoreError>;
    /// Every denylisted `(jti, exp)` whose token has not expired at `now`.
    async fn revoked_tokens(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Whether `jti` is on the denylist (one indexed lookup, for the CLI).
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Deletes the denylist rows of tokens that expired before `before`.
    async fn prune_revocations(&self, before: i64) -> Result<(), StoreError>;
}

/// Users and refresh tokens (password and refresh_token grants).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with this name.
    async fn get_user(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// Every user, ordered by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Inserts a user; `Conflict` if the name is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// Replaces a user's password hash, scopes and state; `NotFound` if
    /// absent. Disabling a user or changing the password revokes the user's
    /// refresh tokens in the same transaction.
    async fn update_user(&self, user: &User) -> Result<(), StoreError>;
    /// Deletes a user and the user's refresh tokens; `NotFound` if absent.
    async fn delete_user(&self, username: &Username) -> Result<(), StoreError>;
    /// The client a refresh token (live or not) was issued to.
    async fn refresh_token_owner(&self, hash: &str) -> Result<Option<ClientId>, StoreError>;
    /// Revokes every token of the family of the refresh token with `hash`.
    async fn revoke_refresh_family(&self, hash: &str) -> Result<(), StoreError>;
    /// Stores a new refresh token.
    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError>;
    /// Spends the token with `hash` if it is live, issued to `client`, and
    /// its user is enabled, and stores its successor (`next_hash`, expiring
    /// at `next_expires_at` or at the family's absolute end, whichever comes
    /// first) in the same family, all in one transaction so
    /// that two concurrent uses cannot both succeed. A token that was
    /// already spent revokes its whole family (RFC 9700 §4.14.2).
    async fn use_refresh_token(
        &self,
        hash: &str,
        client: &ClientId,
        now: i64,
        next_hash: &str,
        next_expires_at: i64,
    ) -> Result<RefreshOutcome, StoreError>;
}

/// An in-memory [`ClientStore`] for the core's unit tests.
#[cfg(test)]
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// Clients in a map; `fail` makes every call fail as if the database
    /// were gone; `reads` counts `get_client` calls.
    #[derive(Default)]
    pub struct MemoryStore {
        pub clients: Mutex<BTreeMap<ClientId, Client>>,
        pub fail: AtomicBool,
        pub reads: AtomicUsize,
        pub revoked: Mutex<BTreeMap<String, i64>>,
    }

    impl MemoryStore {
        fn check(&self) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(StoreError::Unavailable(anyhow::anyhow!("down")))
            } else {
                Ok(())
            }
        }

        fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<ClientId, Client>> {
            self.clients.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    #[async_trait]
    impl ClientStore for MemoryStore {
        async fn ping(&self) -> Result<(), StoreError> {
            self.check()
        }
        async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
            self.check()?;
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.map().get(id).cloned())
        }
        async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
            self.check()?;
            Ok(self.map().values().cloned().collect())
        }
        async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
            self.check()?;
            let mut map = self.map();
            if map.contains_key(&client.id) {
                return Err(StoreError::Conflict);
            }
            map.insert(client.id.clone(), client.clone());
            Ok(())
        }
        async fn update_client(&self, client: &Client) -> Result<(), StoreError> {
            self.check()?;
            let mut map = self.map();
            let old = map.get_mut(&client.id).ok_or(StoreError::NotFound)?;
            let secrets = std::mem::take(&mut old.secrets);
            *old = Client {
                secrets,
                ..client.clone()
            };
            Ok(())
        }
        async fn delete_client(&self, id: &ClientId, _now: i64) -> Result<(), StoreError> {
            self.check()?;
            self.map()
                .remove(id)
                .map(|_| ())
                .ok_or(StoreError::NotFound)
        }
        async fn rotate_secret(
            &self,
            id: &ClientId,
            phc: &str,
            now: i64,
            old_expire_at: i64,
        ) -> Result<(), StoreError> {
            self.check()?;
            let mut map = self.map();
            let c = map.get_mut(id).ok_or(StoreError::NotFound)?;
            // At most two live secrets: the current one keeps the grace
            // period, an older one still in its grace period ends now.
            for s in &mut c.secrets {
                match s.expires_at {
                    None => s.expires_at = Some(old_expire_at),
                    Some(e) if e > now => s.expires_at = Some(now),
                    Some(_) => {}
                }
            }
            let next = c.secrets.iter().map(|s| s.id).max().unwrap_or(0) + 1;
            c.secrets.insert(
                0,
                crate::oauth::StoredSecret {
                    id: next,
                    phc: phc.to_owned(),
                    created_at: now,
                    expires_at: None,
                    last_used_at: None,
                },
            );
            Ok(())
        }
        async fn record_secret_use(&self, _uses: &[(i64, i64)]) -> Result<(), StoreError> {
            self.check()
        }
        async fn revoke_token(&self, jti: &str, exp: i64, _now: i64) -> Result<(), StoreError> {
            self.check()?;
            self.revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(jti.to_owned(), exp);
            Ok(())
        }
        async fn revoked_tokens(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
            self.check()?;
            let map = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            Ok(map
                .iter()
                .filter(|(_, exp)| **exp > now)
                .map(|(j, e)| (j.clone(), *e))
                .collect())
        }
        async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
            self.check()?;
            let map = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            Ok(map.contains_key(jti))
        }
        async fn prune_revocations(&self, before: i64) -> Result<(), StoreError> {
            self.check()?;
            self.revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, exp| *exp >= before);
            Ok(())
        }
    }
}
