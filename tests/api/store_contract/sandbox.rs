//! The sandbox's faults and the audit trail.

use ficha::audit::{AuditBatch, AuditQuery, AuditRecord};
use ficha::sandbox::FaultRecord;
use ficha::store::Store;

use super::{id, T0};

/// The sandbox's faults.
pub async fn faults(store: &dyn Store) {
    let fault = FaultRecord {
        client_id: id("contract-b"),
        kind: "status:503".parse().unwrap(),
        times: Some(3),
        ratio: Some(0.25),
        seed: Some(u64::MAX - 1),
        generation: -7,
        created_at: T0,
    };
    store.set_fault(&fault).await.unwrap();
    assert_eq!(store.list_faults().await.unwrap(), vec![fault.clone()]);
    let replaced = FaultRecord {
        kind: "delay:250".parse().unwrap(),
        times: None,
        ratio: None,
        seed: None,
        generation: 8,
        created_at: T0 + 1,
        ..fault.clone()
    };
    store.set_fault(&replaced).await.unwrap();
    let other = FaultRecord {
        client_id: id("contract-a"),
        ..fault.clone()
    };
    store.set_fault(&other).await.unwrap();
    assert_eq!(
        store.list_faults().await.unwrap(),
        vec![other.clone(), replaced.clone()]
    );
    assert_eq!(
        store
            .clear_faults(Some(&id("contract-a")), T0 + 2)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.clear_faults(None, T0 + 3).await.unwrap(), 1);
    assert!(store.list_faults().await.unwrap().is_empty());
}
/// The audit trail.
pub async fn audit(store: &dyn Store) {
    let record = |jti: &str, client: &str, iat: i64| AuditRecord {
        jti: jti.into(),
        client_id: client.into(),
        subject: client.into(),
        scope: "payments:read".into(),
        dialect: "payvalida".into(),
        kid: "kid-2".into(),
        iat,
        exp: iat + 600,
        address: (jti != "a-3").then(|| "127.0.0.1".into()),
    };
    let batch = [
        record("a-1", "contract-a", T0),
        record("a-2", "contract-b", T0 + 1),
        record("a-3", "contract-a", T0 + 2),
    ];
    let packed: AuditBatch = batch.iter().collect();
    store.insert_audit(&packed).await.unwrap();
    // A batch retried after a lost answer keeps the rows that made it.
    let retried: AuditBatch = batch[..1].iter().collect();
    store.insert_audit(&retried).await.unwrap();
    let query = AuditQuery {
        client_id: None,
        since: None,
        until: None,
        jti: None,
        limit: 100,
    };
    let all = store.list_audit(&query).await.unwrap();
    assert_eq!(
        all,
        vec![batch[2].clone(), batch[1].clone(), batch[0].clone()]
    );
    let of_a = AuditQuery {
        client_id: Some("contract-a".into()),
        since: Some(T0 + 1),
        ..query.clone()
    };
    assert_eq!(
        store.list_audit(&of_a).await.unwrap(),
        vec![batch[2].clone()]
    );
    let one = AuditQuery {
        jti: Some("a-2".into()),
        until: Some(T0 + 2),
        limit: 1,
        ..query.clone()
    };
    assert_eq!(
        store.list_audit(&one).await.unwrap(),
        vec![batch[1].clone()]
    );
    assert_eq!(store.prune_audit(T0 + 1).await.unwrap(), 1);
    assert_eq!(store.list_audit(&query).await.unwrap().len(), 2);
    // Pruning every token of a grant: the same grant met again is found or
    // made again, and tokens of other grants keep theirs.
    assert_eq!(store.prune_audit(T0 + 3).await.unwrap(), 2);
    let again = [
        record("a-4", "contract-a", T0 + 4),
        AuditRecord {
            scope: "payments:write".into(),
            kid: "kid-3".into(),
            ..record("a-5", "contract-a", T0 + 5)
        },
        AuditRecord {
            subject: "user-9".into(),
            ..record("a-6", "contract-b", T0 + 6)
        },
    ];
    for r in &again {
        let one: AuditBatch = std::iter::once(r).collect();
        store.insert_audit(&one).await.unwrap();
    }
    let mut newest_first = again.to_vec();
    newest_first.reverse();
    assert_eq!(store.list_audit(&query).await.unwrap(), newest_first);
    assert_eq!(
        store.list_audit(&of_a).await.unwrap(),
        vec![again[1].clone(), again[0].clone()]
    );
}
