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
//! - verifications run on a bounded blocking pool, behind per-client-id and
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
    client: Option<Client>,
    verified: Mutex<Vec<([u8; 32], i64)>>,
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
            Change::Keys | Change::Revoked(_) => {}
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
            client,
            verified: Mutex::new(Vec::new()),
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

    fn throttled(&self, id: &ClientId, peer: Option<IpAddr>) -> Option<Duration> {
        let clock = DefaultClock::default();
        let mut wait = None;
        if let Some(t) = &self.throttle_client {
            if let Err(not_until) = t.check_key(&id.as_ref().to_owned()) {
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
    ) -> Result<Client, TokenError> {
        let (method, candidates) = match credentials {
            Credentials::Secret { method, candidates } => (*method, candidates),
            Credentials::Public(_) => {
                return Err(TokenError::InvalidClient(AuthFailure::NoCredentials))
            }
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
            if let Some(wait) = self.throttled(&client.id, peer) {
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
        self.pending_uses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(secret_id, now);
        Ok(client.clone())
    }

    async fn verify_dummy(
        &self,
        c: Option<&Candidate>,
        peer: Option<IpAddr>,
    ) -> Result<(), TokenError> {
        let Some(c) = c else { return Ok(()) };
        if let Some(wait) = self.throttled(&c.id, peer) {
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
        let result = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            jobs.into_iter()
                .find(|(_, phc, secret)| secret::verify_secret(phc, secret))
                .map(|(id, _, secret)| (id, secret))
        })
        .await
        .map_err(|e| TokenError::Internal(e.into()));
        drop(permit);
        result
    }
}
