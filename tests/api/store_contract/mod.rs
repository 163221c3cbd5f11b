//! The store contract: one sequence of operations through every port of
//! `ficha::store::Store`, run against each backend (SQLite always,
//! PostgreSQL when reachable and always in CI), with the results each must
//! give. Each file holds the steps of one storage concern; the change log
//! is read last, after every write.

mod clients;
mod keys;
mod sandbox;
mod users;

use ficha::oauth::ClientId;
use ficha::store::{connect, PoolSettings, Store};
use ficha::sync::Change;
use tempfile::TempDir;

use crate::helpers::{drop_database, fresh_database, Backend};

/// The contract's clock: every write happens at this time or later.
const T0: i64 = 1_800_000_000;

fn id(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

/// The change log, read after every other step: each write appended its
/// change, in order, and the cursor reads only what follows it.
async fn changes(store: &dyn Store, start: i64) {
    let c = |s: &str| Change::Client(id(s));
    let entries: Vec<Change> = store
        .changes_since(start)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, change)| change)
        .collect();
    let expected = [
        // clients
        vec![c("contract-a"), c("contract-b"), c("contract-c")],
        vec![c("contract-a")],
        vec![c("contract-a"); 2],
        vec![c("contract-c")],
        // keys: two inserts and one state change
        vec![Change::Keys; 3],
        // faults: three sets and two clears
        vec![Change::Faults; 5],
        // revocations: one per token, not per call
        vec![
            Change::Revoked("jti-1".into()),
            Change::Revoked("jti-2".into()),
        ],
    ]
    .concat();
    assert_eq!(entries, expected);
    let seqs: Vec<i64> = store
        .changes_since(start)
        .await
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let last = store.latest_change().await.unwrap();
    assert_eq!(seqs.last(), Some(&last));
    let middle = seqs[seqs.len() - 3];
    assert_eq!(store.changes_since(middle).await.unwrap().len(), 2);
    assert!(store.changes_since(last).await.unwrap().is_empty());
    store.record_change(&Change::All, T0 + 40).await.unwrap();
    assert_eq!(store.changes_since(last).await.unwrap()[0].1, Change::All);

    // A day later: the next write prunes the log past its retention, and
    // a rotation prunes the secrets expired for a day.
    let later = T0 + 20 + 86_401;
    store
        .rotate_secret(&id("contract-a"), "$phc$a4", later, later + 100)
        .await
        .unwrap();
    let read = store.get_client(&id("contract-a")).await.unwrap().unwrap();
    assert_eq!(
        read.secrets
            .iter()
            .map(|s| s.phc.as_str())
            .collect::<Vec<_>>(),
        ["$phc$a4", "$phc$a3", "$phc$a2"]
    );
    let kept: Vec<Change> = store
        .changes_since(start)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, change)| change)
        .collect();
    assert_eq!(kept, vec![c("contract-a")]);
}

async fn contract(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(backend, &dir).await else {
        return;
    };
    let store = connect(&url, &PoolSettings::default()).await.unwrap();
    store.ping().await.unwrap();
    let start = store.latest_change().await.unwrap();
    clients::clients(store.as_ref()).await;
    users::users(store.as_ref()).await;
    keys::keys(store.as_ref()).await;
    sandbox::faults(store.as_ref()).await;
    clients::revocations(store.as_ref()).await;
    sandbox::audit(store.as_ref()).await;
    changes(store.as_ref(), start).await;
    drop(store);
    drop_database(&url).await;
}

#[tokio::test]
async fn the_store_contract_holds_on_sqlite() {
    contract(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_store_contract_holds_on_postgres() {
    contract(Backend::Postgres).await;
}
