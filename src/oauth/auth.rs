//! Client authentication on the hot path.
//!
//! A token must cost no password hash and no database round trip in the
//! steady state, yet a change to a client must take effect within seconds on
//! every instance. So:
//! - client rows are cached in memory, and the cache is trusted only while
//!   the change log has been polled recently (`fresh_until`); a change
//!   evicts the client, and an instance that cannot reach its database stops
//!   trusting its cache and answers `temporarily_unavailable`;
//! - after one successful argon2id verification, an HMAC-SHA256 tag of the
//!   presented secret (under a random per-process key) is kept beside the
//!   cached client for that secret version; only the argon2 hash is stored;
//! - verifications run on a fixed pool of hashing threads, behind per-client-id and
//!   per-address throttles, so a flood of wrong secrets waits there instead
//!   of starving the async runtime;
//! - an unknown id is verified against a dummy hash so that it costs the
//!   same as a wrong secret (RFC 6749 §10.2 makes the point for secrets).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use hmac::{Hmac, Mac};
use moka::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::client::{AuthMethod, Client, ClientId};
use super::error::{AuthFailure, TokenError};
use super::hashpool::HashPool;
use super::request::{Candidate, Credentials};
use super::secret;
use super::store::{Change, ClientStore, StoreError};

/// How many verified-secret tags a cached client keeps (secret versions ×
/// presented values); more than two live secrets is unusual.
const TAGS_PER_CLIENT: usize = 4;

/// Tuning of the authenticator, all explicit.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Client rows kept in memory.
    pub client_cache_size: u64,
    /// How long a verified secret is remembered.
    pub verified_ttl: Duration,
    /// How long the cache is trusted after the last successful change poll.
    pub max_staleness_secs: i64,
    /// Concurrent argon2 verifications (defaults to the number of cores).
    pub hash_concurrency: usize,
    /// How long a request may wait for a verification slot.
    pub hash_queue_timeout: Duration,
    /// Hash attempts per minute per client id (0 disables the throttle).
    pub throttle_client_per_minute: u32,
    /// Hash attempts per minute per remote address (0 disables).
    pub throttle_address_per_minute: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            client_cache_size: 32_768,
            verified_ttl: Duration::from_secs(600),
            max_staleness_secs: 5,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue_timeout: Duration::from_secs(5),
            throttle_client_per_minute: 10,
            throttle_address_per_minute: 120,
        }
    }
}

struct CachedClient {
    client: Option<Arc<Client>>,
    verified: Mutex<Vec<([u8; 32], i64)>>,
    /// When this entry last queued a last-use record; one per minute is
    /// plenty, and it keeps the shared queue off the hot path.
    use_recorded_at: AtomicI64,
}

type HmacSha256 = Hmac<Sha256>;

/// Authenticates clients; see the module documentation.
pub struct Authenticator {
    store: Arc<dyn ClientStore>,
    clients: Cache<ClientId, Arc<CachedClient>>,
    generation: AtomicU64,
    fresh_until: AtomicI64,
    mac: HmacSha256,
    dummy_phc: String,
    hash_slots: Semaphore,
    hash_pool: HashPool,
    throttle_client: Option<DefaultKeyedRateLimiter<String>>,
    throttle_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    pending_uses: Mutex<HashMap<i64, i64>>,
    settings: AuthSettings,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

fn quota(per_minute: u32) -> Option<Quota> {
    NonZeroU32::new(per_minute).map(Quota::per_minute)
}

impl Authenticator {
    /// An authenticator over `store`; the cache starts untrusted until the
    /// first successful poll ([`Authenticator::mark_fresh`]).
    pub fn new(store: Arc<dyn ClientStore>, settings: AuthSettings) -> anyhow::Result<Self> {
        let mut hmac_key = zeroize::Zeroizing::new([0u8; 64]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, hmac_key.as_mut());
        Ok(Authenticator {
            store,
            clients: Cache::builder()
                .max_capacity(settings.client_cache_size)
                .time_to_live(settings.verified_ttl)
                .build(),
            generation: AtomicU64::new(0),
            fresh_until: AtomicI64::new(i64::MIN),
            mac: <HmacSha256 as hmac::digest::KeyInit>::new(&(*hmac_key).into()),
            dummy_phc: secret::dummy_hash()?,
            hash_slots: Semaphore::new(settings.hash_concurrency.max(1)),
            hash_pool: HashPool::new(settings.hash_concurrency.max(1))?,
            throttle_client: quota(settings.throttle_client_per_minute)
                .map(DefaultKeyedRateLimiter::keyed),
            throttle_address: quota(settings.throttle_address_per_minute)
                .map(DefaultKeyedRateLimiter::keyed),
            pending_uses: Mutex::new(HashMap::new()),
            settings,
        })
    }

    /// Records a successful change poll at `now`: the cache may be trusted
    /// for `max_staleness_secs` more.
    pub fn mark_fresh(&self, now: i64) {
        self.fresh_until
            .store(now + self.settings.max_staleness_secs, Ordering::SeqCst);
    }

    /// Applies one change-log entry to the cache.
    pub fn apply(&self, change: &Change) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Client(id) => self.clients.invalidate(id),
            Change::Keys | Change::Revoked(_) | Change::Faults => {}
            Change::All => self.clients.invalidate_all(),
        }
    }

    /// Drops throttle state for keys that have fully recovered; called
    /// periodically so an id-spraying attacker cannot grow memory.
    pub fn housekeeping(&self) {
        if let Some(t) = &self.throttle_client {
            t.retain_recent();
        }
        if let Some(t) = &self.throttle_address {
            t.retain_recent();
        }
    }

    /// Takes the batched last-use times to flush to the store.
    pub fn take_secret_uses(&self) -> Vec<(i64, i64)> {
        let mut map = self.pending_uses.lock().unwrap_or_else(|e| e.into_inner());
        map.drain().collect()
    }

    async fn cached_client(
        &self,
        id: &ClientId,
        now: i64,
    ) -> Result<Arc<CachedClient>, TokenError> {
        let fresh = now < self.fresh_until.load(Ordering::SeqCst);
        if fresh {
            if let Some(c) = self.clients.get(id) {
                return Ok(c);
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let client = self.store.get_client(id).await.map_err(|e| match e {
            StoreError::Unavailable(e) => TokenError::Unavailable(e),
            other => TokenError::Internal(other.into()),
        })?;
        let entry = Arc::new(CachedClient {
            client: client.map(Arc::new),
            verified: Mutex::new(Vec::new()),
            use_recorded_at: AtomicI64::new(0),
        });
        // A change that landed while we were reading must not be overwritten
        // by the stale row we read.
        if fresh && self.generation.load(Ordering::SeqCst) == generation {
            self.clients.insert(id.clone(), entry.clone());
        }
        Ok(entry)
    }

    fn tag(&self, id: &ClientId, secret_id: i64, presented: &SecretString) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(id.as_ref().as_bytes());
        mac.update(&[0]);
        mac.update(&secret_id.to_be_bytes());
        mac.update(presented.expose_secret().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn throttled(&self, key: &str, peer: Option<IpAddr>) -> Option<Duration> {
        let clock = DefaultClock::default();
        let mut wait = None;
        if let Some(t) = &self.throttle_client {
            if let Err(not_until) = t.check_key(&key.to_owned()) {
                wait = Some(not_until.wait_time_from(clock.now()));
            }
        }
        if let (Some(t), Some(ip)) = (&self.throttle_address, peer) {
            if let Err(not_until) = t.check_key(&ip) {
                let w = not_until.wait_time_from(clock.now());
                wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
            }
        }
        wait
    }

    /// Authenticates the presented credentials and returns the client.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        peer: Option<IpAddr>,
        now: i64,
    ) -> Result<Arc<Client>, TokenError> {
        let (method, candidates) = match credentials {
            Credentials::Secret { method, candidates } => (*method, candidates),
            Credentials::Public(id) => return self.authenticate_public(id, now).await,
        };
        // Of the readings of the Basic header, the first whose id exists wins.
        let mut found = None;
        for c in candidates {
            let entry = self.cached_client(&c.id, now).await?;
            if entry.client.is_some() {
                found = Some((c, entry));
                break;
            }
        }
        let Some((first, entry)) = found else {
            self.verify_dummy(candidates.first(), peer).await?;
            return Err(TokenError::InvalidClient(AuthFailure::UnknownClient));
        };
        let Some(client) = entry.client.as_ref() else {
            return Err(TokenError::InvalidClient(AuthFailure::UnknownClient));
        };
        let readings: Vec<&Candidate> = candidates.iter().filter(|c| c.id == first.id).collect();
        let live: Vec<_> = client.secrets.iter().filter(|s| s.is_live(now)).collect();

        // Fast path: a secret verified before, for a secret version still live.
        let mut ok = None;
        'outer: for c in &readings {
            for s in &live {
                let tag = self.tag(&client.id, s.id, &c.secret);
                let verified = entry.verified.lock().unwrap_or_else(|e| e.into_inner());
                let ttl = self.settings.verified_ttl.as_secs() as i64;
                if verified
                    .iter()
                    .any(|(t, at)| bool::from(t.ct_eq(&tag)) && now - at < ttl)
                {
                    ok = Some(s.id);
                    break 'outer;
                }
            }
        }

        if ok.is_none() {
            if let Some(wait) = self.throttled(client.id.as_ref(), peer) {
                return Err(TokenError::Throttled { retry_after: wait });
            }
            let jobs: Vec<(i64, String, SecretString)> = readings
                .iter()
                .flat_map(|c| live.iter().map(|s| (s.id, s.phc.clone(), c.secret.clone())))
                .collect();
            let matched = self.verify_blocking(jobs).await?;
            if let Some((secret_id, presented)) = matched {
                let tag = self.tag(&client.id, secret_id, &presented);
                let mut verified = entry.verified.lock().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= TAGS_PER_CLIENT {
                    verified.remove(0);
                }
                verified.push((tag, now));
                ok = Some(secret_id);
            }
        }

        // Checked after the hash so that a disabled client costs the same.
        let Some(secret_id) = ok else {
            return Err(TokenError::InvalidClient(AuthFailure::WrongSecret));
        };
        if !client.enabled {
            return Err(TokenError::InvalidClient(AuthFailure::Disabled));
        }
        if method != AuthMethod::ClientSecretBasic && !client.auth_methods.contains(&method) {
            return Err(TokenError::InvalidClient(AuthFailure::MethodNotAllowed));
        }
        let last = entry.use_recorded_at.load(Ordering::Relaxed);
        if now - last >= 60
            && entry
                .use_recorded_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.pending_uses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(secret_id, now);
        }
        Ok(client.clone())
    }

    /// A public client (RFC 6749 §2.1) proves nothing but its id; only
    /// clients registered with the `none` method are accepted this way.
    async fn authenticate_public(
        &self,
        id: &ClientId,
        now: i64,
    ) -> Result<Arc<Client>, TokenError> {
        let entry = self.cached_client(id, now).await?;
        let client = entry
            .client
            .as_ref()
            .ok_or(TokenError::InvalidClient(AuthFailure::UnknownClient))?;
        if !client.auth_methods.contains(&AuthMethod::None) {
            return Err(TokenError::InvalidClient(AuthFailure::NoCredentials));
        }
        if !client.enabled {
            return Err(TokenError::InvalidClient(AuthFailure::Disabled));
        }
        Ok(client.clone())
    }

    /// Verifies a resource owner's password (password grant) on the same
    /// bounded pool and behind the same throttles as client secrets, keyed
    /// by username; an unknown user is verified against the dummy hash.
    pub async fn verify_password(
        &self,
        username: &str,
        phc: Option<&str>,
        password: &SecretString,
        peer: Option<IpAddr>,
    ) -> Result<bool, TokenError> {
        // A NUL prefix keeps usernames apart from client ids (printable ASCII).
        if let Some(wait) = self.throttled(&format!("\0user:{username}"), peer) {
            return Err(TokenError::Throttled { retry_after: wait });
        }
        let phc = phc.unwrap_or(&self.dummy_phc).to_owned();
        let known = phc != self.dummy_phc;
        let matched = self
            .verify_blocking(vec![(0, phc, password.clone())])
            .await?;
        Ok(known && matched.is_some())
    }

    async fn verify_dummy(
        &self,
        c: Option<&Candidate>,
        peer: Option<IpAddr>,
    ) -> Result<(), TokenError> {
        let Some(c) = c else { return Ok(()) };
        if let Some(wait) = self.throttled(c.id.as_ref(), peer) {
            return Err(TokenError::Throttled { retry_after: wait });
        }
        self.verify_blocking(vec![(0, self.dummy_phc.clone(), c.secret.clone())])
            .await
            .map(|_| ())
    }

    /// Runs argon2 verifications on the blocking pool, at most
    /// `hash_concurrency` at a time; returns the first match.
    async fn verify_blocking(
        &self,
        jobs: Vec<(i64, String, SecretString)>,
    ) -> Result<Option<(i64, SecretString)>, TokenError> {
        let permit =
            tokio::time::timeout(self.settings.hash_queue_timeout, self.hash_slots.acquire())
                .await
                .map_err(|_| TokenError::Unavailable(anyhow::anyhow!("verification queue full")))?
                .map_err(|e| TokenError::Internal(e.into()))?;
        let span = tracing::Span::current();
        let result = self
            .hash_pool
            .run(move || {
                let _enter = span.enter();
                jobs.into_iter()
                    .find(|(_, phc, secret)| secret::verify_secret(phc, secret))
                    .map(|(id, _, secret)| (id, secret))
            })
            .await
            .map_err(TokenError::Internal);
        drop(permit);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::oauth::request::credentials;
    use crate::oauth::scope::ScopeSet;
    use crate::oauth::store::memory::MemoryStore;
    use crate::oauth::{GrantType, StoredSecret};

    const NOW: i64 = 1_800_000_000;

    fn client(id: &str, secret: &str) -> Client {
        Client {
            id: ClientId::parse(id).unwrap(),
            name: None,
            scopes: ScopeSet::parse("transaction").unwrap(),
            default_scopes: None,
            ttl: None,
            audience: None,
            grants: BTreeSet::from([GrantType::ClientCredentials]),
            auth_methods: BTreeSet::from([AuthMethod::ClientSecretBasic]),
            alg: crate::keys::Alg::Es256,
            allowed_audiences: Default::default(),
            can_introspect: false,
            enabled: true,
            created_at: NOW,
            updated_at: NOW,
            secrets: vec![StoredSecret {
                id: 1,
                phc: secret::hash_secret(&secret.to_owned().into()).unwrap(),
                created_at: NOW,
                expires_at: None,
                last_used_at: None,
            }],
        }
    }

    fn basic(id: &str, secret: &str) -> Credentials {
        use base64::Engine as _;
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        );
        credentials(Some(&h), None, None).unwrap()
    }

    async fn setup() -> (Arc<MemoryStore>, Authenticator) {
        let store = Arc::new(MemoryStore::default());
        store
            .create_client(&client("shop", "s3cret"))
            .await
            .unwrap();
        let settings = AuthSettings {
            throttle_client_per_minute: 0,
            throttle_address_per_minute: 0,
            ..AuthSettings::default()
        };
        let auth = Authenticator::new(store.clone(), settings).unwrap();
        auth.mark_fresh(NOW);
        (store, auth)
    }

    #[tokio::test]
    async fn a_verified_secret_is_served_from_memory_without_a_store_read() {
        let (store, auth) = setup().await;
        auth.authenticate(&basic("shop", "s3cret"), None, NOW)
            .await
            .unwrap();
        let reads = store.reads.load(Ordering::SeqCst);
        for _ in 0..10 {
            auth.authenticate(&basic("shop", "s3cret"), None, NOW)
                .await
                .unwrap();
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), reads);
    }

    #[tokio::test]
    async fn the_cache_never_accepts_a_wrong_secret() {
        let (_store, auth) = setup().await;
        auth.authenticate(&basic("shop", "s3cret"), None, NOW)
            .await
            .unwrap();
        for wrong in ["s3cre", "s3cret ", "S3cret", ""] {
            let r = auth.authenticate(&basic("shop", wrong), None, NOW).await;
            assert!(
                matches!(r, Err(TokenError::InvalidClient(AuthFailure::WrongSecret))),
                "{wrong:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_change_evicts_the_client_and_its_verified_secrets() {
        let (store, auth) = setup().await;
        auth.authenticate(&basic("shop", "s3cret"), None, NOW)
            .await
            .unwrap();
        let mut c = store
            .get_client(&ClientId::parse("shop").unwrap())
            .await
            .unwrap()
            .unwrap();
        c.enabled = false;
        store.update_client(&c).await.unwrap();
        // Until the change log says so, the cached copy is used...
        assert!(auth
            .authenticate(&basic("shop", "s3cret"), None, NOW)
            .await
            .is_ok());
        // ...and the moment it does, the client is refused.
        auth.apply(&Change::Client(c.id.clone()));
        let r = auth.authenticate(&basic("shop", "s3cret"), None, NOW).await;
        assert!(matches!(
            r,
            Err(TokenError::InvalidClient(AuthFailure::Disabled))
        ));
    }

    #[tokio::test]
    async fn a_stale_cache_is_not_trusted_and_a_dead_store_means_unavailable() {
        let (store, auth) = setup().await;
        auth.authenticate(&basic("shop", "s3cret"), None, NOW)
            .await
            .unwrap();
        store.fail.store(true, Ordering::SeqCst);
        // Within the staleness bound the cached client still works.
        assert!(auth
            .authenticate(&basic("shop", "s3cret"), None, NOW + 4)
            .await
            .is_ok());
        // Past it, the store must be asked, and it is down.
        let r = auth
            .authenticate(&basic("shop", "s3cret"), None, NOW + 6)
            .await;
        assert!(matches!(r, Err(TokenError::Unavailable(_))));
    }

    #[tokio::test]
    async fn an_expired_grace_secret_stops_working_even_when_cached() {
        let (store, auth) = setup().await;
        auth.authenticate(&basic("shop", "s3cret"), None, NOW)
            .await
            .unwrap();
        let new_phc = secret::hash_secret(&"n3w".to_owned().into()).unwrap();
        let id = ClientId::parse("shop").unwrap();
        store
            .rotate_secret(&id, &new_phc, NOW, NOW + 60)
            .await
            .unwrap();
        auth.apply(&Change::Client(id));
        auth.mark_fresh(NOW + 30);
        assert!(auth
            .authenticate(&basic("shop", "s3cret"), None, NOW + 30)
            .await
            .is_ok());
        assert!(auth
            .authenticate(&basic("shop", "n3w"), None, NOW + 30)
            .await
            .is_ok());
        auth.mark_fresh(NOW + 61);
        let r = auth
            .authenticate(&basic("shop", "s3cret"), None, NOW + 61)
            .await;
        assert!(matches!(
            r,
            Err(TokenError::InvalidClient(AuthFailure::WrongSecret))
        ));
        assert!(auth
            .authenticate(&basic("shop", "n3w"), None, NOW + 61)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn an_unknown_client_is_refused_after_a_dummy_verification() {
        let (_store, auth) = setup().await;
        let r = auth
            .authenticate(&basic("ghost", "s3cret"), None, NOW)
            .await;
        assert!(matches!(
            r,
            Err(TokenError::InvalidClient(AuthFailure::UnknownClient))
        ));
    }
}
