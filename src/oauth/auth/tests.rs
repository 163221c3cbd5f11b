use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use super::*;
use crate::oauth::request::credentials;
use crate::oauth::scope::ScopeSet;
use crate::oauth::store::memory::MemoryStore;
use crate::oauth::{GrantType, StoredSecret};

const NOW: i64 = 1_800_000_000;
const LEGIT: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
const ATTACKER: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));

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
        dialects: Default::default(),
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

fn post(id: &str, secret: &str) -> Credentials {
    credentials(None, Some(id), Some(secret.to_owned().into())).unwrap()
}

fn open_settings() -> AuthSettings {
    AuthSettings {
        throttle_client_per_minute: 0,
        throttle_address_per_minute: 0,
        ..AuthSettings::default()
    }
}

async fn setup_with(settings: AuthSettings) -> (Arc<MemoryStore>, Arc<Authenticator>) {
    let store = Arc::new(MemoryStore::default());
    store
        .create_client(&client("shop", "s3cret"))
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(store.clone(), settings).unwrap());
    auth.mark_fresh(NOW);
    (store, auth)
}

async fn setup() -> (Arc<MemoryStore>, Arc<Authenticator>) {
    setup_with(open_settings()).await
}

fn is_invalid_client(r: &Result<Arc<Client>, TokenError>) -> bool {
    matches!(r, Err(TokenError::InvalidClient(_)))
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
    assert_eq!(auth.stats().hash_runs, 1);
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
    let id = ClientId::parse("shop").unwrap();
    let mut c = store.get_client(&id).await.unwrap().unwrap();
    c.enabled = false;
    store.update_client(&c).await.unwrap();
    // Until the change log says so, the cached copy is used...
    assert!(auth
        .authenticate(&basic("shop", "s3cret"), None, NOW)
        .await
        .is_ok());
    // ...and the moment it does, the client is refused.
    auth.evict_client(&c.id);
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
    auth.evict_client(&id);
    auth.mark_fresh(NOW + 30);
    for secret in ["s3cret", "n3w"] {
        assert!(auth
            .authenticate(&basic("shop", secret), None, NOW + 30)
            .await
            .is_ok());
    }
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
    assert_eq!(auth.stats().hash_runs, MAX_LIVE_SECRETS as u64);
}

#[tokio::test]
async fn concurrent_cold_requests_share_one_store_read_and_one_verification() {
    // Throttles as strict as can be: one failure a minute. The right
    // secret is charged once, refunded, and never refused.
    let (store, auth) = setup_with(AuthSettings {
        throttle_client_per_minute: 1,
        throttle_address_per_minute: 1,
        ..AuthSettings::default()
    })
    .await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = auth.stats();
    assert_eq!(stats.verifications, 1, "{stats:?}");
    assert_eq!(stats.hash_runs, 1, "{stats:?}");
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    // The verified tag landed where later requests look.
    auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
    assert_eq!(auth.stats().verifications, 1);
}

#[tokio::test]
async fn a_right_secret_is_never_throttled_by_its_own_rate() {
    let (store, auth) = setup_with(AuthSettings {
        throttle_client_per_minute: 1,
        throttle_address_per_minute: 1,
        ..AuthSettings::default()
    })
    .await;
    // Cold again and again: every change evicts the client.
    let id = ClientId::parse("shop").unwrap();
    for _ in 0..5 {
        auth.evict_client(&id);
        auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
            .await
            .unwrap();
    }
    assert_eq!(auth.stats().verifications, 5);
    assert!(store.reads.load(Ordering::SeqCst) >= 5);
}

#[tokio::test]
async fn a_wrong_secret_found_once_is_refused_again_without_hashing_or_counting() {
    let (_store, auth) = setup_with(AuthSettings {
        throttle_client_per_minute: 2,
        throttle_address_per_minute: 100,
        ..AuthSettings::default()
    })
    .await;
    for _ in 0..30 {
        let r = auth.authenticate(&basic("shop", "nope"), LEGIT, NOW).await;
        assert!(is_invalid_client(&r), "{r:?}");
    }
    // Unknown ids alike, so the two cannot be told apart.
    for _ in 0..30 {
        let r = auth.authenticate(&basic("ghost", "nope"), LEGIT, NOW).await;
        assert!(is_invalid_client(&r), "{r:?}");
    }
    let stats = auth.stats();
    assert_eq!(stats.verifications, 2, "{stats:?}");
    assert_eq!(stats.rejected_without_hashing, 58, "{stats:?}");
    assert_eq!(stats.throttled, 0, "{stats:?}");
    // And the right secret still works from the same address.
    auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_secret_sent_before_the_rotation_arrives_gets_through_once_it_has() {
    let (store, auth) = setup_with(AuthSettings {
        throttle_client_per_minute: 3,
        throttle_address_per_minute: 100,
        ..AuthSettings::default()
    })
    .await;
    auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
    let id = ClientId::parse("shop").unwrap();
    let new_phc = secret::hash_secret(&"n3w".to_owned().into()).unwrap();
    store
        .rotate_secret(&id, &new_phc, NOW, NOW + 3600)
        .await
        .unwrap();
    // The change has not reached this instance: the new secret is wrong
    // here, once hashed and then remembered, never throttled.
    for _ in 0..40 {
        let r = auth.authenticate(&basic("shop", "n3w"), LEGIT, NOW).await;
        assert!(
            matches!(r, Err(TokenError::InvalidClient(AuthFailure::WrongSecret))),
            "{r:?}"
        );
    }
    assert_eq!(auth.stats().verifications, 2);
    auth.evict_client(&id);
    auth.authenticate(&basic("shop", "n3w"), LEGIT, NOW)
        .await
        .unwrap();
    auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_flood_aimed_at_an_id_from_one_address_never_locks_it_out_elsewhere() {
    let (_store, auth) = setup_with(AuthSettings {
        throttle_client_per_minute: 3,
        throttle_address_per_minute: 120,
        ..AuthSettings::default()
    })
    .await;
    let mut throttled = 0;
    for i in 0..20 {
        match auth
            .authenticate(&basic("shop", &format!("guess{i}")), ATTACKER, NOW)
            .await
        {
            Err(TokenError::Throttled { .. }) => throttled += 1,
            r => assert!(is_invalid_client(&r), "{r:?}"),
        }
    }
    assert_eq!(throttled, 17);
    // Only the attacker's three were hashed; its refusals cost nothing.
    assert_eq!(auth.stats().verifications, 3);
    // The client itself, cold, from its own address: no 429.
    auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
    // A second cold verification after a change, still under attack.
    auth.evict_client(&ClientId::parse("shop").unwrap());
    auth.authenticate(&basic("shop", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_throttled_address_costs_no_store_read() {
    let (store, auth) = setup_with(AuthSettings {
        throttle_client_per_minute: 10,
        throttle_address_per_minute: 5,
        ..AuthSettings::default()
    })
    .await;
    for i in 0..200 {
        let _ = auth
            .authenticate(&basic(&format!("ghost{i}"), "x"), ATTACKER, NOW)
            .await;
    }
    let stats = auth.stats();
    assert_eq!(stats.verifications, 5, "{stats:?}");
    assert!(store.reads.load(Ordering::SeqCst) <= 6);
    assert!(auth.throttle_entries() <= 6);
}

#[tokio::test]
async fn a_failure_costs_the_same_passes_whether_the_id_exists_or_not() {
    let (store, auth) = setup().await;
    // A secret whose Basic header has two readings.
    store
        .create_client(&client("plus", "a+b%2Fc"))
        .await
        .unwrap();
    // A client in a rotation's grace period: two live secrets.
    store.create_client(&client("both", "one")).await.unwrap();
    let phc = secret::hash_secret(&"two".to_owned().into()).unwrap();
    store
        .rotate_secret(&ClientId::parse("both").unwrap(), &phc, NOW, NOW + 600)
        .await
        .unwrap();
    let cost = |id: &'static str, secret: &'static str| {
        let auth = auth.clone();
        async move {
            let before = auth.stats().hash_runs;
            let r = auth.authenticate(&basic(id, secret), LEGIT, NOW).await;
            assert!(is_invalid_client(&r), "{id}: {r:?}");
            auth.stats().hash_runs - before
        }
    };
    let plain = MAX_LIVE_SECRETS as u64;
    assert_eq!(cost("shop", "wrong").await, plain);
    assert_eq!(cost("ghost", "wrong").await, plain);
    assert_eq!(cost("both", "wrong").await, plain);
    assert_eq!(cost("plus", "wr+ng%21").await, 2 * plain);
    assert_eq!(cost("ghost", "wr+ng%21").await, 2 * plain);
    assert_eq!(cost("both", "wr+ng%21").await, 2 * plain);
}

#[tokio::test]
async fn basic_is_refused_for_a_client_that_allows_only_the_body() {
    let (store, auth) = setup().await;
    let mut c = client("poster", "s3cret");
    c.auth_methods = BTreeSet::from([AuthMethod::ClientSecretPost]);
    store.create_client(&c).await.unwrap();
    let r = auth
        .authenticate(&basic("poster", "s3cret"), LEGIT, NOW)
        .await;
    assert!(
        matches!(
            r,
            Err(TokenError::InvalidClient(AuthFailure::MethodNotAllowed))
        ),
        "{r:?}"
    );
    auth.authenticate(&post("poster", "s3cret"), LEGIT, NOW)
        .await
        .unwrap();
    // And the other way round for a Basic-only client.
    let r = auth.authenticate(&post("shop", "s3cret"), LEGIT, NOW).await;
    assert!(matches!(
        r,
        Err(TokenError::InvalidClient(AuthFailure::MethodNotAllowed))
    ));
}

#[tokio::test]
async fn a_full_hashing_queue_answers_unavailable() {
    let (_store, auth) = setup_with(AuthSettings {
        hash_concurrency: 1,
        hash_queue_size: 1,
        ..open_settings()
    })
    .await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.authenticate(&basic("shop", &format!("w{i}")), LEGIT, NOW)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let mut unavailable = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(TokenError::Unavailable(_)) => unavailable += 1,
            r => assert!(matches!(r, Err(TokenError::InvalidClient(_))), "{r:?}"),
        }
    }
    assert!(unavailable >= 1, "no request met the full queue");
    assert!(auth.stats().queue_peak <= 1);
}
