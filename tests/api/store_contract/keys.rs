//! The key ring's rows.

use ficha::keys::{Alg, KeyRecord, KeyState, SealedClaimsKey};
use ficha::oauth::StoreError;
use ficha::store::Store;

use super::T0;

/// The key ring's rows.
pub async fn keys(store: &dyn Store) {
    let key = |kid: &str, state: KeyState, at: i64| KeyRecord {
        kid: kid.into(),
        alg: Alg::Es256,
        state,
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        sealed_private_key: Some(vec![0, 1, 2, 255]),
        created_at: at,
        activated_at: None,
        retiring_at: None,
    };
    let one = key("kid-1", KeyState::Active, T0);
    let two = KeyRecord {
        sealed_private_key: None,
        ..key("kid-2", KeyState::Next, T0 + 10)
    };
    store.insert_key(&one).await.unwrap();
    store.insert_key(&two).await.unwrap();
    assert_eq!(
        store.list_keys().await.unwrap(),
        vec![two.clone(), one.clone()]
    );
    store
        .apply_key_changes(
            None,
            &[
                ("kid-2".into(), KeyState::Active, T0 + 20),
                ("kid-1".into(), KeyState::Retiring, T0 + 20),
            ],
        )
        .await
        .unwrap();
    let listed = store.list_keys().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| (k.kid.as_str(), k.state, k.activated_at, k.retiring_at))
            .collect::<Vec<_>>(),
        [
            ("kid-2", KeyState::Active, Some(T0 + 20), None),
            ("kid-1", KeyState::Retiring, None, Some(T0 + 20)),
        ]
    );
    // An unknown kid fails the whole change, and the new key with it.
    let three = key("kid-3", KeyState::Next, T0 + 30);
    assert!(matches!(
        store
            .apply_key_changes(
                Some(&three),
                &[("kid-404".into(), KeyState::Retired, T0 + 30)]
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
    assert!(matches!(
        store.insert_key(&one).await,
        Err(StoreError::Conflict)
    ));

    let sealed = |kid: &str, at: i64| SealedClaimsKey {
        kid: kid.into(),
        sealed: vec![9, 8, 7],
        created_at: at,
    };
    store
        .insert_claims_key(&sealed("ck-2", T0 + 1))
        .await
        .unwrap();
    store.insert_claims_key(&sealed("ck-1", T0)).await.unwrap();
    // A kid already stored is left as it is.
    store
        .insert_claims_key(&SealedClaimsKey {
            sealed: vec![1],
            ..sealed("ck-1", T0)
        })
        .await
        .unwrap();
    let claims = store.list_claims_keys().await.unwrap();
    assert_eq!(
        claims
            .iter()
            .map(|k| (k.kid.as_str(), k.sealed.clone()))
            .collect::<Vec<_>>(),
        [("ck-1", vec![9, 8, 7]), ("ck-2", vec![9, 8, 7])]
    );
}
