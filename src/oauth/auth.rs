//! Client authentication on the hot path, and under load, restarts and
//! attack (SPEC §3, §9).
//!
//! A token must cost no password hash and no database round trip in the
//! steady state, yet a change to a client must take effect within seconds
//! on every instance, a right secret must never be refused because of
//! others, and a failure must cost the same whether the id exists. So:
//! - client rows are cached in memory, trusted only while the change log
//!   has been polled recently (`fresh_until`); a change evicts the client,
//!   and an instance that cannot reach its database answers
//!   `temporarily_unavailable`. A used entry never expires on a timer;
//! - after one argon2id verification, an HMAC-SHA256 tag of the presented
//!   secret for that secret version (under a random per-process key) is
//!   kept beside the cached client, and a presented value that matched none
//!   of the live secrets is remembered as rejected for exactly that set of
//!   secrets: it is refused again without hashing and without being
//!   counted, until the client's secrets change;
//! - concurrent cold requests share one store read and one verification
//!   ([`SingleFlight`]), so a restart under load costs one hash per client;
//! - verifications run on a fixed pool behind a bounded, per-address fair
//!   queue ([`HashPool`]), charged to [`Throttle`]s by (id, address) and by
//!   address, refunded when they match;
//! - a failed verification always runs the same number of argon2 passes:
//!   one per reading of the Basic header for each of [`MAX_LIVE_SECRETS`],
//!   padded with a dummy hash, whether the id exists or not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Hmac;
use moka::sync::Cache;
use secrecy::SecretString;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::client::{AuthMethod, Client, ClientId};
use super::error::{AuthFailure, TokenError};
use super::flight::SingleFlight;
use super::hashpool::HashPool;
use super::request::{Candidate, Credentials};
use super::secret;
use super::store::ClientStore;
use super::throttle::{address_key, Throttle};

/// Live secrets a client has at most: the current one and, during a
/// rotation's grace period, the previous one (a new rotation ends an older
/// grace period). Every failed verification costs this many passes per
/// reading, so that the count of live secrets cannot be told from outside.
pub const MAX_LIVE_SECRETS: usize = 2;

/// How many verified-secret tags a cached client keeps (secret versions ×
/// presented values).
const TAGS_PER_CLIENT: usize = 4;

/// Rejected presentations remembered (a 32-byte key each).
const REJECTED_CAPACITY: u64 = 16_384;

/// Tuning of the authenticator, all explicit.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Client entries kept in memory.
    pub client_cache_size: u64,
    /// How long an unused client entry (and its verified secrets) stays in
    /// memory; each use restarts it, so a busy client never goes cold.
    pub idle_ttl: Duration,
    /// How long the cache is trusted after the last successful change poll.
    pub max_staleness_secs: i64,
    /// Threads running argon2 verifications (defaults to the cores).
    pub hash_concurrency: usize,
    /// Verifications that may wait for a hashing thread (SPEC §9: 256).
    pub hash_queue_size: usize,
    /// Failed verifications per minute per (client id, address); 0 disables.
    pub throttle_client_per_minute: u32,
    /// Failed verifications per minute per address; 0 disables.
    pub throttle_address_per_minute: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            client_cache_size: 32_768,
            idle_ttl: Duration::from_secs(3600),
            max_staleness_secs: 5,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue_size: 256,
            throttle_client_per_minute: 10,
            throttle_address_per_minute: 120,
        }
    }
}

struct CachedClient {
    client: Option<Arc<Client>>,
    verified: Mutex<Vec<[u8; 32]>>,
    /// When this entry last queued a last-use record; one per minute is
    /// plenty, and it keeps the shared queue off the hot path.
    use_recorded_at: AtomicI64,
}

type HmacSha256 = Hmac<Sha256>;
type Tag = [u8; 32];

/// Counters of the authenticator's cold path, for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuthStats {
    /// argon2 passes run (dummy passes included).
    pub hash_runs: u64,
    /// Verification jobs queued.
    pub verifications: u64,
    /// Presentations refused from the rejected set, without hashing.
    pub rejected_without_hashing: u64,
    /// Requests refused by a throttle.
    pub throttled: u64,
    /// Jobs waiting for a hashing thread now.
    pub queued: u64,
    /// The most jobs ever waiting at once.
    pub queue_peak: u64,
}

#[derive(Default)]
struct Counters {
    hash_runs: Arc<AtomicU64>,
    verifications: AtomicU64,
    rejected_without_hashing: AtomicU64,
    throttled: AtomicU64,
}

/// Authenticates clients; see the module documentation.
pub struct Authenticator {
    store: Arc<dyn ClientStore>,
    clients: Cache<ClientId, Arc<CachedClient>>,
    loads: SingleFlight<ClientId, Arc<CachedClient>>,
    verifications: SingleFlight<Tag, Option<(i64, usize)>>,
    rejected: Cache<Tag, ()>,
    generation: AtomicU64,
    fresh_until: AtomicI64,
    mac: HmacSha256,
    dummy_phc: Arc<str>,
    hash_pool: HashPool,
    throttle: Throttle,
    pending_uses: Mutex<HashMap<i64, i64>>,
    counters: Counters,
    settings: AuthSettings,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

fn throttled(retry_after: Duration) -> TokenError {
    TokenError::Throttled { retry_after }
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
                .time_to_idle(settings.idle_ttl)
                .build(),
            loads: SingleFlight::default(),
            verifications: SingleFlight::default(),
            rejected: Cache::builder()
                .max_capacity(REJECTED_CAPACITY)
                .time_to_idle(settings.idle_ttl)
                .build(),
            generation: AtomicU64::new(0),
            fresh_until: AtomicI64::new(i64::MIN),
            mac: <HmacSha256 as hmac::digest::KeyInit>::new(&(*hmac_key).into()),
            dummy_phc: secret::dummy_hash()?.into(),
            hash_pool: HashPool::new(settings.hash_concurrency.max(1), settings.hash_queue_size)?,
            throttle: Throttle::new(
                settings.throttle_client_per_minute,
                settings.throttle_address_per_minute,
            ),
            pending_uses: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            settings,
        })
    }

    /// Records a successful change poll at `now`: the cache may be trusted
    /// for `max_staleness_secs` more.
    pub fn mark_fresh(&self, now: i64) {
        self.fresh_until
            .store(now + self.settings.max_staleness_secs, Ordering::SeqCst);
    }

    /// Drops the cached entry of `id` (its row or secrets changed), so the
    /// next request reads it again. A read already in flight is not cached.
    pub fn evict_client(&self, id: &ClientId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.clients.invalidate(id);
    }

    /// Drops every cached client: something changed that the change log
    /// cannot name, or changes may have been missed.
    pub fn evict_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.clients.invalidate_all();
    }

    /// Runs the caches' pending evictions; called periodically.
    pub fn housekeeping(&self) {
        self.clients.run_pending_tasks();
        self.rejected.run_pending_tasks();
    }

    /// The cold path's counters.
    pub fn stats(&self) -> AuthStats {
        let c = &self.counters;
        AuthStats {
            hash_runs: c.hash_runs.load(Ordering::Relaxed),
            verifications: c.verifications.load(Ordering::Relaxed),
            rejected_without_hashing: c.rejected_without_hashing.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            queued: self.hash_pool.queued() as u64,
            queue_peak: self.hash_pool.peak() as u64,
        }
    }

    /// Throttle buckets held now (bounded; see `oauth::throttle`).
    pub fn throttle_entries(&self) -> u64 {
        self.throttle.entries()
    }

    /// Takes the batched last-use times to flush to the store.
    pub fn take_secret_uses(&self) -> Vec<(i64, i64)> {
        let mut map = self.pending_uses.lock().unwrap_or_else(|e| e.into_inner());
        map.drain().collect()
    }

    fn is_fresh(&self, now: i64) -> bool {
        now < self.fresh_until.load(Ordering::SeqCst)
    }

    /// The cached entry of `id`, if the cache may be trusted.
    fn cached(&self, id: &ClientId, now: i64) -> Option<Arc<CachedClient>> {
        self.is_fresh(now).then(|| self.clients.get(id)).flatten()
    }

    /// The entry of `id`, from the cache or from one shared store read.
    async fn load(&self, id: &ClientId, now: i64) -> Result<Arc<CachedClient>, TokenError> {
        if let Some(entry) = self.cached(id, now) {
            return Ok(entry);
        }
        self.loads
            .run(id, || async {
                if let Some(entry) = self.cached(id, now) {
                    return Ok(entry);
                }
                let generation = self.generation.load(Ordering::SeqCst);
                let client = self.store.get_client(id).await.map_err(TokenError::from)?;
                let entry = Arc::new(CachedClient {
                    client: client.map(Arc::new),
                    verified: Mutex::new(Vec::new()),
                    use_recorded_at: AtomicI64::new(0),
                });
                // A change that landed while we were reading must not be
                // overwritten by the stale row we read.
                if self.is_fresh(now) && self.generation.load(Ordering::SeqCst) == generation {
                    self.clients.insert(id.clone(), entry.clone());
                }
                Ok(entry)
            })
            .await
    }

    /// A secret version of `client` this presentation was verified for.
    fn remembered(
        &self,
        entry: &CachedClient,
        client: &Client,
        readings: &[&Candidate],
        live: &[i64],
    ) -> Option<i64> {
        let verified = entry.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.is_empty() {
            return None;
        }
        readings.iter().find_map(|c| {
            live.iter().copied().find(|&sid| {
                let tag = self.verified_tag(&client.id, sid, &c.secret);
                verified.iter().any(|t| bool::from(t.ct_eq(&tag)))
            })
        })
    }

    /// Authenticates the presented credentials and returns the client.
    /// `peer` is the client's address (after trusted proxies).
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
        let address = address_key(peer);
        // Of the readings of the Basic header, the first whose id exists
        // wins. Cached entries are consulted before anything that costs.
        let mut found = None;
        let mut all_cached = true;
        for c in candidates {
            match self.cached(&c.id, now) {
                Some(entry) if entry.client.is_some() => {
                    found = Some((c.id.clone(), entry));
                    break;
                }
                Some(_) => {}
                None => all_cached = false,
            }
        }
        if found.is_none() && !all_cached {
            // An address already throttled costs no store read.
            if let Some(wait) = self.throttle.address_blocked(address, Instant::now()) {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                return Err(throttled(wait));
            }
            for c in candidates {
                let entry = self.load(&c.id, now).await?;
                if entry.client.is_some() {
                    found = Some((c.id.clone(), entry));
                    break;
                }
            }
        }
        // An unknown id is verified as the first reading's, against no
        // secrets: the same passes, the same throttles, the same memory.
        let (id, entry) = match found {
            Some(f) => f,
            None => (
                candidates[0].id.clone(),
                Arc::new(CachedClient {
                    client: None,
                    verified: Mutex::new(Vec::new()),
                    use_recorded_at: AtomicI64::new(0),
                }),
            ),
        };
        let client = entry.client.clone();
        let readings: Vec<&Candidate> = candidates.iter().filter(|c| c.id == id).collect();
        let live: Vec<i64> = client.as_ref().map_or_else(Vec::new, |c| {
            c.secrets
                .iter()
                .filter(|s| s.is_live(now))
                .map(|s| s.id)
                .collect()
        });

        let mut matched = match &client {
            Some(c) => self.remembered(&entry, c, &readings, &live),
            None => None,
        };
        if matched.is_none() {
            let secrets: Vec<&SecretString> = readings.iter().map(|c| &c.secret).collect();
            let presentation = self.presentation_tag(&id, &live, &secrets);
            matched = self
                .verify_presentation(
                    presentation,
                    &id,
                    &entry,
                    &readings,
                    candidates.len(),
                    &live,
                    address,
                )
                .await?;
        }

        // Checked after the hash so that a disabled client costs the same.
        let (Some(client), Some(secret_id)) = (client, matched) else {
            return Err(TokenError::InvalidClient(if entry.client.is_some() {
                AuthFailure::WrongSecret
            } else {
                AuthFailure::UnknownClient
            }));
        };
        if !client.enabled {
            return Err(TokenError::InvalidClient(AuthFailure::Disabled));
        }
        if !client.auth_methods.contains(&method) {
            return Err(TokenError::InvalidClient(AuthFailure::MethodNotAllowed));
        }
        self.note_use(&entry, secret_id, now);
        Ok(client)
    }

    fn note_use(&self, entry: &CachedClient, secret_id: i64, now: i64) {
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
    }

    /// A public client (RFC 6749 §2.1) proves nothing but its id; only
    /// clients registered with the `none` method are accepted this way.
    async fn authenticate_public(
        &self,
        id: &ClientId,
        now: i64,
    ) -> Result<Arc<Client>, TokenError> {
        let entry = self.load(id, now).await?;
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
}

mod cold;
mod password;
mod tags;
#[cfg(test)]
mod tests;
