//! Clients, their secrets and the denylist.

use std::collections::BTreeSet;

use ficha::keys::Alg;
use ficha::oauth::{parse_list, Client, ScopeSet, StoreError, StoredSecret};
use ficha::store::Store;

use super::{id, T0};

fn secret(phc: &str, at: i64) -> StoredSecret {
    StoredSecret {
        id: 0,
        phc: phc.into(),
        created_at: at,
        expires_at: None,
        last_used_at: None,
    }
}

fn client(name: &str, secrets: Vec<StoredSecret>) -> Client {
    Client {
        id: id(name),
        name: Some(format!("{name} label")),
        scopes: ScopeSet::parse("payments:read payments:write").unwrap(),
        default_scopes: Some(ScopeSet::parse("payments:read").unwrap()),
        ttl: Some(600),
        audience: Some("https://api.example".into()),
        allowed_audiences: ["https://a.example", "https://b.example"]
            .map(String::from)
            .into(),
        grants: parse_list("client_credentials,password,refresh_token").unwrap(),
        auth_methods: parse_list("client_secret_basic,client_secret_post").unwrap(),
        dialects: ["payvalida", "nequi"].map(String::from).into(),
        alg: Alg::Rs256,
        can_introspect: true,
        enabled: true,
        created_at: T0,
        updated_at: T0,
        secrets,
    }
}

/// A client as read back: the store numbers the secrets.
fn without_secret_ids(mut c: Client) -> Client {
    for s in &mut c.secrets {
        s.id = 0;
    }
    c
}

fn phcs(c: &Client) -> Vec<(String, Option<i64>)> {
    c.secrets
        .iter()
        .map(|s| (s.phc.clone(), s.expires_at))
        .collect()
}
/// Clients: create, read, list, conflict, update, secrets with rotation
/// and grace, last use, delete.
pub async fn clients(store: &dyn Store) {
    let a = client("contract-a", vec![secret("$phc$a1", T0)]);
    let b = client("contract-b", vec![secret("$phc$b1", T0)]);
    let mut c = client("contract-c", vec![]);
    c.name = None;
    c.default_scopes = None;
    c.ttl = None;
    c.audience = None;
    c.allowed_audiences = BTreeSet::new();
    c.can_introspect = false;
    for x in [&a, &b, &c] {
        store.create_client(x).await.unwrap();
    }
    assert!(matches!(
        store.create_client(&a).await,
        Err(StoreError::Conflict)
    ));
    let read = store.get_client(&a.id).await.unwrap().unwrap();
    assert_eq!(without_secret_ids(read.clone()), a);
    assert!(read.secrets[0].id > 0);
    assert_eq!(
        without_secret_ids(store.get_client(&c.id).await.unwrap().unwrap()),
        c
    );
    assert!(store.get_client(&id("nobody")).await.unwrap().is_none());

    // Each listed client carries its own secrets and no other's.
    let all = store.list_clients().await.unwrap();
    let listed: Vec<Client> = all.into_iter().map(without_secret_ids).collect();
    assert_eq!(listed, vec![a.clone(), b.clone(), c.clone()]);

    let mut changed = a.clone();
    changed.name = Some("renamed".into());
    changed.enabled = false;
    changed.dialects = ["fegora"].map(String::from).into();
    changed.updated_at = T0 + 5;
    store.update_client(&changed).await.unwrap();
    assert_eq!(
        without_secret_ids(store.get_client(&a.id).await.unwrap().unwrap()),
        changed
    );
    let mut ghost = changed.clone();
    ghost.id = id("ghost");
    assert!(matches!(
        store.update_client(&ghost).await,
        Err(StoreError::NotFound)
    ));

    // Rotation with grace: the current secret ends at the grace, the new
    // one is current; a second rotation ends the first grace now.
    store
        .rotate_secret(&a.id, "$phc$a2", T0 + 10, T0 + 100)
        .await
        .unwrap();
    let read = store.get_client(&a.id).await.unwrap().unwrap();
    assert_eq!(
        phcs(&read),
        vec![("$phc$a2".into(), None), ("$phc$a1".into(), Some(T0 + 100))]
    );
    assert_eq!(read.updated_at, T0 + 10);
    store
        .rotate_secret(&a.id, "$phc$a3", T0 + 20, T0 + 200)
        .await
        .unwrap();
    let read = store.get_client(&a.id).await.unwrap().unwrap();
    assert_eq!(
        phcs(&read),
        vec![
            ("$phc$a3".into(), None),
            ("$phc$a2".into(), Some(T0 + 200)),
            ("$phc$a1".into(), Some(T0 + 20)),
        ]
    );
    assert!(matches!(
        store.rotate_secret(&id("ghost"), "$x", T0, T0).await,
        Err(StoreError::NotFound)
    ));

    let current = read.secrets[0].id;
    store
        .record_secret_use(&[(current, T0 + 25)])
        .await
        .unwrap();
    let read = store.get_client(&a.id).await.unwrap().unwrap();
    assert_eq!(read.secrets[0].last_used_at, Some(T0 + 25));
    assert_eq!(read.secrets[1].last_used_at, None);
    let b_read = store.get_client(&b.id).await.unwrap().unwrap();
    assert_eq!(phcs(&b_read), vec![("$phc$b1".into(), None)]);

    store.delete_client(&c.id, T0 + 30).await.unwrap();
    assert!(store.get_client(&c.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_client(&c.id, T0 + 30).await,
        Err(StoreError::NotFound)
    ));
}
/// The denylist.
pub async fn revocations(store: &dyn Store) {
    store.revoke_token("jti-1", T0 + 100, T0).await.unwrap();
    // Revoking twice is no error and no second change.
    store.revoke_token("jti-1", T0 + 100, T0).await.unwrap();
    store.revoke_token("jti-2", T0 + 50, T0).await.unwrap();
    assert!(store.is_revoked("jti-1").await.unwrap());
    assert!(!store.is_revoked("jti-3").await.unwrap());
    let mut live = store.revoked_tokens(T0 + 60).await.unwrap();
    live.sort();
    assert_eq!(live, vec![("jti-1".to_owned(), T0 + 100)]);
    store.prune_revocations(T0 + 60).await.unwrap();
    assert!(!store.is_revoked("jti-2").await.unwrap());
    assert!(store.is_revoked("jti-1").await.unwrap());
}
