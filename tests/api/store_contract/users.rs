//! Users and refresh-token families.

use ficha::oauth::{NewRefreshToken, RefreshOutcome, ScopeSet, StoreError, User, Username};
use ficha::store::Store;

use super::{id, T0};

/// Users and refresh-token families.
pub async fn users(store: &dyn Store) {
    let alice = User {
        username: Username::parse("alice").unwrap(),
        phc: "$phc$alice".into(),
        scopes: Some(ScopeSet::parse("payments:read").unwrap()),
        enabled: true,
        created_at: T0,
        updated_at: T0,
    };
    let bob = User {
        username: Username::parse("bob").unwrap(),
        scopes: None,
        phc: "$phc$bob".into(),
        ..alice.clone()
    };
    store.create_user(&bob).await.unwrap();
    store.create_user(&alice).await.unwrap();
    assert!(matches!(
        store.create_user(&alice).await,
        Err(StoreError::Conflict)
    ));
    let got = store.get_user(&alice.username).await.unwrap().unwrap();
    assert_eq!(
        (got.phc, got.scopes),
        (alice.phc.clone(), alice.scopes.clone())
    );
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username.as_ref().to_owned())
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    let owner = id("contract-b");
    let first = NewRefreshToken {
        hash: "hash-1".into(),
        family_id: "family-1".into(),
        client_id: owner.clone(),
        username: alice.username.clone(),
        scope: "payments:read".into(),
        issued_at: T0,
        expires_at: T0 + 1000,
        family_expires_at: T0 + 500,
    };
    store.insert_refresh_token(&first).await.unwrap();
    assert_eq!(
        store.refresh_token_owner("hash-1").await.unwrap(),
        Some(owner.clone())
    );
    assert_eq!(store.refresh_token_owner("nope").await.unwrap(), None);
    // Another client cannot spend it; its client can, once.
    assert_eq!(
        store
            .use_refresh_token("hash-1", &id("contract-a"), T0 + 1, "hash-2", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        store
            .use_refresh_token("hash-1", &owner, T0 + 1, "hash-2", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Rotated {
            username: alice.username.clone(),
            scope: "payments:read".into()
        }
    );
    // The successor lives to the family's end, not past it.
    assert_eq!(
        store
            .use_refresh_token("hash-2", &owner, T0 + 499, "hash-3", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Rotated {
            username: alice.username.clone(),
            scope: "payments:read".into()
        }
    );
    assert_eq!(
        store
            .use_refresh_token("hash-3", &owner, T0 + 500, "hash-4", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    // Reuse of a spent token revokes the family.
    assert_eq!(
        store
            .use_refresh_token("hash-1", &owner, T0 + 2, "hash-x", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Reused
    );

    // A new password ends the user's sessions.
    let second = NewRefreshToken {
        hash: "hash-10".into(),
        family_id: "family-10".into(),
        expires_at: T0 + 5000,
        family_expires_at: T0 + 5000,
        ..first.clone()
    };
    store.insert_refresh_token(&second).await.unwrap();
    let changed = User {
        phc: "$phc$alice2".into(),
        updated_at: T0 + 3,
        ..alice.clone()
    };
    store.update_user(&changed).await.unwrap();
    assert_eq!(
        store
            .use_refresh_token("hash-10", &owner, T0 + 4, "hash-11", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    // Family revocation by any member's hash.
    let third = NewRefreshToken {
        hash: "hash-20".into(),
        family_id: "family-20".into(),
        ..second.clone()
    };
    store.insert_refresh_token(&third).await.unwrap();
    store.revoke_refresh_family("hash-20").await.unwrap();
    assert_eq!(
        store
            .use_refresh_token("hash-20", &owner, T0 + 4, "hash-21", T0 + 2000)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(matches!(
        store
            .update_user(&User {
                username: Username::parse("carol").unwrap(),
                ..alice.clone()
            })
            .await,
        Err(StoreError::NotFound)
    ));
    store.delete_user(&bob.username).await.unwrap();
    assert!(store.get_user(&bob.username).await.unwrap().is_none());
    assert!(matches!(
        store.delete_user(&bob.username).await,
        Err(StoreError::NotFound)
    ));
}
