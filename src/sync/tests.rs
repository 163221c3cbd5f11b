//! The poller driven tick by tick over an in-memory store and a manual
//! clock: what each change evicts or reloads, and how the caches behave
//! while the database is away and when it comes back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::keys::{
    KeyRecord, KeyRing, KeyRingHandle, KeyState, KeyStore, KeyVault, SealedClaimsKey,
};
use crate::oauth::memory::MemoryStore;
use crate::oauth::{
    AuthMethod, AuthSettings, Authenticator, Client, ClientId, ClientStore, Clock, Credentials,
    Denylist, GrantType, ManualClock, ScopeSet, Stale, StoreError, TokenError,
};
use crate::sandbox::{FaultKind, FaultRecord, FaultStore, Phase, Sandbox};

const NOW: i64 = 1_800_000_000;
const STALENESS: i64 = 5;

/// The core's in-memory store plus a change log, a fault table and a key
/// table that counts its reads; `revocations_down` fails only the
/// denylist reload.
#[derive(Default)]
struct TestStore {
    core: MemoryStore,
    changes: Mutex<Vec<(i64, Change)>>,
    faults: Mutex<Vec<FaultRecord>>,
    key_loads: AtomicUsize,
    revocations_down: AtomicBool,
}

impl TestStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.core.fail.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(anyhow::anyhow!("down")))
        } else {
            Ok(())
        }
    }

    fn log(&self, seq: i64, change: Change) {
        self.changes.lock().unwrap().push((seq, change));
    }

    fn set_down(&self, down: bool) {
        self.core.fail.store(down, Ordering::SeqCst);
    }

    fn reads(&self) -> usize {
        self.core.reads.load(Ordering::SeqCst)
    }

    fn revoke_now(&self, jti: &str) {
        self.core
            .revoked
            .lock()
            .unwrap()
            .insert(jti.to_owned(), NOW + 3600);
    }

    fn set_fault(&self, client: &str) {
        let id = ClientId::parse(client).unwrap();
        let fault = FaultRecord::new(id, FaultKind::Status(503), None, None, None, NOW).unwrap();
        self.faults.lock().unwrap().push(fault);
    }
}

#[async_trait]
impl ChangeLog for TestStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        self.check()?;
        Ok(self
            .changes
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0)
            .max()
            .unwrap_or(0))
    }
    async fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change)>, StoreError> {
        self.check()?;
        let mut changes: Vec<_> = self
            .changes
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 > after)
            .cloned()
            .collect();
        changes.sort_by_key(|c| c.0);
        Ok(changes)
    }
    async fn record_change(&self, _change: &Change, _now: i64) -> Result<(), StoreError> {
        unreachable!("the poller only reads the log")
    }
}

#[async_trait]
impl ClientStore for TestStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.core.ping().await
    }
    async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.core.get_client(id).await
    }
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.core.list_clients().await
    }
    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        self.core.create_client(client).await
    }
    async fn update_client(&self, client: &Client) -> Result<(), StoreError> {
        self.core.update_client(client).await
    }
    async fn delete_client(&self, id: &ClientId, now: i64) -> Result<(), StoreError> {
        self.core.delete_client(id, now).await
    }
    async fn rotate_secret(
        &self,
        id: &ClientId,
        phc: &str,
        now: i64,
        old_expire_at: i64,
    ) -> Result<(), StoreError> {
        self.core.rotate_secret(id, phc, now, old_expire_at).await
    }
    async fn record_secret_use(&self, uses: &[(i64, i64)]) -> Result<(), StoreError> {
        self.core.record_secret_use(uses).await
    }
    async fn revoke_token(&self, jti: &str, exp: i64, now: i64) -> Result<(), StoreError> {
        self.core.revoke_token(jti, exp, now).await
    }
    async fn revoked_tokens(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        if self.revocations_down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(anyhow::anyhow!("down")));
        }
        self.core.revoked_tokens(now).await
    }
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.core.is_revoked(jti).await
    }
    async fn prune_revocations(&self, before: i64) -> Result<(), StoreError> {
        self.core.prune_revocations(before).await
    }
}

#[async_trait]
impl KeyStore for TestStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.check()?;
        self.key_loads.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
    async fn apply_key_changes(
        &self,
        _new: Option<&KeyRecord>,
        _changes: &[(String, KeyState, i64)],
    ) -> Result<(), StoreError> {
        unreachable!("the poller never writes keys")
    }
    async fn list_claims_keys(&self) -> Result<Vec<SealedClaimsKey>, StoreError> {
        Ok(Vec::new())
    }
    async fn insert_claims_key(&self, _key: &SealedClaimsKey) -> Result<(), StoreError> {
        unreachable!("the poller never writes keys")
    }
}

#[async_trait]
impl FaultStore for TestStore {
    async fn list_faults(&self) -> Result<Vec<FaultRecord>, StoreError> {
        self.check()?;
        Ok(self.faults.lock().unwrap().clone())
    }
    async fn set_fault(&self, _fault: &FaultRecord) -> Result<(), StoreError> {
        unreachable!("the poller never writes faults")
    }
    async fn clear_faults(&self, _client: Option<&ClientId>, _now: i64) -> Result<u64, StoreError> {
        unreachable!("the poller never writes faults")
    }
}

/// A public client: authenticating it reads the store once and hashes
/// nothing, so the store's read count tells cache hits from misses.
fn public_client(id: &str) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: None,
        scopes: ScopeSet::parse("transaction").unwrap(),
        default_scopes: None,
        ttl: None,
        audience: None,
        grants: BTreeSet::from([GrantType::ClientCredentials]),
        auth_methods: BTreeSet::from([AuthMethod::None]),
        dialects: Default::default(),
        alg: crate::keys::Alg::Es256,
        allowed_audiences: Default::default(),
        can_introspect: false,
        enabled: true,
        created_at: NOW,
        updated_at: NOW,
        secrets: Vec::new(),
    }
}

struct Harness {
    store: Arc<TestStore>,
    auth: Arc<Authenticator>,
    denylist: Arc<Denylist>,
    sandbox: Arc<Sandbox>,
    clock: ManualClock,
    poller: Poller,
}

impl Harness {
    /// Two clients, caches loaded as `startup` loads them, and `logged`
    /// already in the change log when they were.
    async fn new(logged: &[(i64, Change)]) -> Self {
        let store = Arc::new(TestStore::default());
        for (seq, change) in logged {
            store.log(*seq, change.clone());
        }
        for id in ["shop", "kiosk"] {
            store.create_client(&public_client(id)).await.unwrap();
        }
        let clock = ManualClock::new(NOW);
        let settings = AuthSettings {
            max_staleness_secs: STALENESS,
            hash_concurrency: 1,
            ..AuthSettings::default()
        };
        let auth = Arc::new(Authenticator::new(store.clone(), settings).unwrap());
        let cursor = store.latest_change().await.unwrap();
        auth.mark_fresh(NOW);
        let denylist = Arc::new(Denylist::new(STALENESS));
        denylist.refresh(store.revoked_tokens(NOW).await.unwrap(), NOW);
        let sandbox = Arc::new(Sandbox::new(8, std::time::Duration::from_secs(60)));
        let poller = Poller::new(
            Caches {
                store: store.clone(),
                vault: KeyVault::new(std::env::temp_dir().join("ficha-sync-tests-no-keys"), None),
                keys: Arc::new(KeyRingHandle::new(KeyRing::default())),
                auth: auth.clone(),
                denylist: denylist.clone(),
                clock: Arc::new(clock.clone()),
                sandbox: Some(sandbox.clone()),
            },
            cursor,
        );
        Harness {
            store,
            auth,
            denylist,
            sandbox,
            clock,
            poller,
        }
    }

    async fn authenticate(&self, id: &str) -> Result<Arc<Client>, TokenError> {
        let credentials = Credentials::Public(ClientId::parse(id).unwrap());
        self.auth
            .authenticate(&credentials, None, self.clock.now())
            .await
    }

    /// Authenticates `id` and says whether that cost a store read.
    async fn read_through(&self, id: &str) -> bool {
        let before = self.store.reads();
        self.authenticate(id).await.unwrap();
        self.store.reads() > before
    }

    fn has_fault(&self, id: &str) -> bool {
        let id = ClientId::parse(id).unwrap();
        self.sandbox.faults.take(&id, Phase::Request).is_some()
    }
}

fn client_change(id: &str) -> Change {
    Change::Client(ClientId::parse(id).unwrap())
}

#[tokio::test]
async fn a_client_change_evicts_that_client_once_and_no_other() {
    let mut h = Harness::new(&[]).await;
    assert!(h.read_through("shop").await);
    assert!(h.read_through("kiosk").await);
    h.poller.tick().await;
    assert!(!h.read_through("shop").await, "a quiet poll evicts nothing");

    h.store.log(1, client_change("shop"));
    h.poller.tick().await;
    assert_eq!(h.poller.cursor(), 1);
    assert!(
        h.read_through("shop").await,
        "the changed client is read again"
    );
    assert!(!h.read_through("kiosk").await, "the other stays cached");

    // The entry is re-read by every poll within the window, applied once.
    h.poller.tick().await;
    assert!(!h.read_through("shop").await);
}

#[tokio::test]
async fn changes_already_loaded_are_skipped_and_late_ones_applied() {
    let mut h = Harness::new(&[(1, client_change("shop"))]).await;
    assert!(h.read_through("shop").await);
    h.poller.tick().await;
    assert!(
        !h.read_through("shop").await,
        "a change from before start-up is already in the loaded caches"
    );

    h.store.log(5, Change::Keys);
    h.poller.tick().await;
    assert_eq!(h.poller.cursor(), 5);
    // PostgreSQL: a lower sequence number can commit after a higher one.
    h.store.log(3, client_change("shop"));
    h.poller.tick().await;
    assert_eq!(h.poller.cursor(), 5);
    assert!(h.read_through("shop").await, "the late change still evicts");
}

#[tokio::test]
async fn keys_faults_and_revocations_are_reloaded_when_they_change() {
    let mut h = Harness::new(&[]).await;
    h.poller.tick().await;
    assert_eq!(h.store.key_loads.load(Ordering::SeqCst), 0);

    h.store.log(1, Change::Keys);
    h.poller.tick().await;
    assert_eq!(h.store.key_loads.load(Ordering::SeqCst), 1);

    h.store.set_fault("shop");
    assert!(!h.has_fault("shop"), "not before the change is polled");
    h.store.log(2, Change::Faults);
    h.poller.tick().await;
    assert!(h.has_fault("shop"));

    h.store.revoke_now("jti-1");
    h.store.log(3, Change::Revoked("jti-1".into()));
    h.poller.tick().await;
    assert_eq!(h.denylist.check("jti-1", h.clock.now()), Ok(true));
    assert_eq!(h.store.key_loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_outage_serves_the_caches_until_they_are_stale() {
    let mut h = Harness::new(&[]).await;
    assert!(h.read_through("shop").await);
    h.store.set_down(true);
    h.poller.tick().await;
    assert!(!h.poller.healthy());

    h.clock.advance(STALENESS - 1);
    assert!(
        !h.read_through("shop").await,
        "still fresh: served from memory"
    );
    assert_eq!(h.denylist.check("jti-1", h.clock.now()), Ok(false));

    h.clock.advance(2);
    h.poller.tick().await;
    assert!(matches!(
        h.authenticate("shop").await,
        Err(TokenError::Unavailable(_))
    ));
    assert_eq!(h.denylist.check("jti-1", h.clock.now()), Err(Stale));
}

#[tokio::test]
async fn recovery_drops_every_cached_client_and_reloads_everything() {
    let mut h = Harness::new(&[]).await;
    assert!(h.read_through("shop").await);
    assert!(h.read_through("kiosk").await);
    h.store.set_down(true);
    h.poller.tick().await;

    // Written while this instance was cut off, their log entries pruned.
    h.store.revoke_now("jti-1");
    h.store.set_fault("kiosk");
    h.clock.advance(STALENESS * 10);
    h.store.set_down(false);
    h.poller.tick().await;

    assert!(h.poller.healthy());
    assert!(h.read_through("shop").await);
    assert!(h.read_through("kiosk").await);
    assert!(!h.read_through("kiosk").await, "fresh again: cached");
    assert_eq!(h.denylist.check("jti-1", h.clock.now()), Ok(true));
    assert_eq!(h.store.key_loads.load(Ordering::SeqCst), 1);
    assert!(h.has_fault("kiosk"));
}

#[tokio::test]
async fn a_failed_denylist_reload_is_retried_on_the_next_poll() {
    let mut h = Harness::new(&[]).await;
    h.store.revoke_now("jti-1");
    h.store.log(1, Change::Revoked("jti-1".into()));
    h.store.revocations_down.store(true, Ordering::SeqCst);
    h.poller.tick().await;
    assert!(h.poller.healthy(), "the log itself was read");

    h.clock.advance(STALENESS);
    h.poller.tick().await;
    assert_eq!(
        h.denylist.check("jti-1", h.clock.now()),
        Err(Stale),
        "a list that failed to reload is not kept fresh"
    );

    h.store.revocations_down.store(false, Ordering::SeqCst);
    h.poller.tick().await;
    assert_eq!(h.denylist.check("jti-1", h.clock.now()), Ok(true));
}
