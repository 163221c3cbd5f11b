//! The audit trail (SPEC §10): each issued token's identifiers and the
//! caller's address reach `audit_tokens` in batches, `ficha audit list`
//! reads and filters them, and no token is ever stored.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::helpers::{eventually, metric_in, Backend, Options, TestApp};

fn b64json(part: &str) -> Value {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Issues a payvalida-seed token as if forwarded for `from`.
async fn token_from(app: &TestApp, id: &str, secret: &str, from: &str) -> String {
    let resp = app
        .http
        .post(app.url("/oauth2/token"))
        .header("Authorization", crate::helpers::basic_header(id, secret))
        .header("X-Forwarded-For", from)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn audit_list(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "list"];
    all.extend_from_slice(args);
    app.cli_json(&all).as_array().unwrap().clone()
}

/// The text column of each row `q` selects from the database at `url`.
async fn texts(backend: Backend, url: &str, q: &str) -> Vec<String> {
    use sqlx::Connection as _;
    let rows: Vec<(String,)> = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut c).await.unwrap()
        }
    };
    rows.into_iter().map(|(s,)| s).collect()
}

/// Every stored value of every row, concatenated.
async fn table_text(app: &TestApp) -> String {
    let q = "SELECT jti || client_id || subject || scope || dialect || kid || \
             CAST(iat AS TEXT) || CAST(exp AS TEXT) || COALESCE(address, '') FROM audit_tokens";
    texts(app.backend, &app.db_url, q).await.concat()
}

/// The client ids of the `audit_grants` rows at `url`, in order.
async fn grant_clients(backend: Backend, url: &str) -> Vec<String> {
    let q = "SELECT client_id FROM audit_grants ORDER BY client_id";
    texts(backend, url, q).await
}

/// A token of `client` (its own subject) for `transaction`, issued at
/// `iat` for 20 minutes, from no known address.
fn record(jti: &str, client: &str, iat: i64) -> ficha::audit::AuditRecord {
    ficha::audit::AuditRecord {
        jti: jti.into(),
        client_id: client.into(),
        subject: client.into(),
        scope: "transaction".into(),
        dialect: "payvalida".into(),
        kid: "k1".into(),
        iat,
        exp: iat + 1200,
        address: None,
    }
}

async fn tokens_reach_the_trail_with_their_fields_and_filters_work(backend: Backend) {
    let opts = Options {
        trusted_proxies: "127.0.0.1".parse().unwrap(),
        ..Options::default()
    };
    let Some(app) = TestApp::spawn_on(backend, opts).await else {
        return;
    };
    let (shop, shop_secret) = app.create_client(&["--id", "shop", "--scopes", "transaction"]);
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(token_from(&app, "payvalida", "client_secret", "203.0.113.7").await);
    }
    for _ in 0..2 {
        tokens.push(token_from(&app, &shop, &shop_secret, "198.51.100.9").await);
    }
    let arrived = eventually(Duration::from_secs(15), || async {
        audit_list(&app, &[]).len() == 5
    })
    .await;
    assert!(arrived, "rows: {:?}", audit_list(&app, &[]));

    let rows = audit_list(&app, &[]);
    for token in &tokens {
        let mut parts = token.split('.');
        let header = b64json(parts.next().unwrap());
        let claims = b64json(parts.next().unwrap());
        let row = rows
            .iter()
            .find(|r| r["jti"] == claims["jti"])
            .unwrap_or_else(|| panic!("no row for {claims}"));
        for field in ["client_id", "scope", "iat", "exp"] {
            assert_eq!(row[field], claims[field], "{field}");
        }
        assert_eq!(row["subject"], claims["sub"]);
        assert_eq!(row["kid"], header["kid"]);
        assert_eq!(row["dialect"], "payvalida");
        let from = if claims["client_id"] == "shop" {
            "198.51.100.9"
        } else {
            "203.0.113.7"
        };
        assert_eq!(row["address"], from);
    }

    // Filters.
    assert_eq!(audit_list(&app, &["--client", "shop"]).len(), 2);
    assert_eq!(audit_list(&app, &["--client", "payvalida"]).len(), 3);
    let jti = rows[0]["jti"].as_str().unwrap();
    let one = audit_list(&app, &["--jti", jti]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["jti"], jti);
    assert_eq!(audit_list(&app, &["--limit", "2"]).len(), 2);
    let min_iat = rows
        .iter()
        .map(|r| r["iat"].as_i64().unwrap())
        .min()
        .unwrap();
    let max_iat = rows
        .iter()
        .map(|r| r["iat"].as_i64().unwrap())
        .max()
        .unwrap();
    let later = (max_iat + 1).to_string();
    assert!(audit_list(&app, &["--since", &later]).is_empty());
    assert!(audit_list(&app, &["--until", &min_iat.to_string()]).is_empty());
    let since = time::OffsetDateTime::from_unix_timestamp(min_iat)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        audit_list(&app, &["--since", &since, "--until", &later]).len(),
        5
    );
    let text = app.cli(&["audit", "list", "--client", "shop"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("198.51.100.9"), "{text}");

    // A bad time is one clear line and a failure.
    let bad = app.cli(&["audit", "list", "--since", "yesterday"]);
    assert!(!bad.status.success());
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--since takes an RFC 3339 time"), "{err}");

    // No token, nor its signature, is stored.
    let stored = table_text(&app).await;
    assert!(stored.contains(jti));
    for token in &tokens {
        assert!(!stored.contains(token.as_str()));
        assert!(!stored.contains(token.rsplit('.').next().unwrap()));
    }
    app.cleanup().await;
}

#[tokio::test]
async fn audit_trail_on_sqlite() {
    tokens_reach_the_trail_with_their_fields_and_filters_work(Backend::Sqlite).await;
}

#[tokio::test]
async fn audit_trail_on_postgres() {
    tokens_reach_the_trail_with_their_fields_and_filters_work(Backend::Postgres).await;
}

/// A flood of tokens is written in a few batches: never more than one a
/// second since the server started, however many tokens.
async fn a_flood_is_written_at_most_once_a_second(backend: Backend) {
    let started = Instant::now();
    let Some(app) = TestApp::spawn_on(backend, Options::default()).await else {
        return;
    };
    let mut issued = 0u64;
    while started.elapsed() < Duration::from_millis(2500) || issued < 200 {
        let batch: Vec<_> = (0..20)
            .map(|_| {
                app.post_token(
                    Some(("payvalida", "client_secret")),
                    &[("grant_type", "client_credentials")],
                )
            })
            .collect();
        for resp in futures_util::future::join_all(batch).await {
            assert_eq!(resp.status(), 200);
            issued += 1;
        }
    }
    let metrics = || app.metrics_text();
    let all_in = eventually(Duration::from_secs(15), || async {
        metric_in(&metrics().await, "ficha_audit_records_total") == issued
    })
    .await;
    assert!(all_in, "{}", metrics().await);
    let text = metrics().await;
    let writes = metric_in(&text, "ficha_audit_writes_total");
    let elapsed = started.elapsed().as_secs();
    assert_eq!(metric_in(&text, "ficha_audit_dropped_total"), 0);
    assert!(writes >= 1);
    assert!(
        writes <= elapsed + 1,
        "{writes} writes in {elapsed} s for {issued} tokens"
    );
    assert_eq!(
        audit_list(&app, &["--limit", "100000"]).len() as u64,
        issued
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_flood_on_sqlite() {
    a_flood_is_written_at_most_once_a_second(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_flood_on_postgres() {
    a_flood_is_written_at_most_once_a_second(Backend::Postgres).await;
}

/// Two instances on one PostgreSQL meeting the same new grants in opposite
/// orders: both batches are written. Inserting grants in each batch's own
/// order, each instance could hold the row the other waits for, and
/// PostgreSQL would break the deadlock by failing one batch.
#[tokio::test]
async fn two_instances_writing_the_same_new_grants_both_succeed() {
    use crate::helpers::{drop_database, fresh_database};
    use ficha::audit::AuditBatch;
    use ficha::store::{connect, PoolSettings};
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(Backend::Postgres, &dir).await else {
        return;
    };
    let one = connect(&url, &PoolSettings::default()).await.unwrap();
    let two = connect(&url, &PoolSettings::default()).await.unwrap();
    let entry = |jti: String, client: String| record(&jti, &client, 1_700_000_000);
    for i in 0..100 {
        let (x, y) = (format!("x{i}"), format!("y{i}"));
        let first: AuditBatch = [
            entry(format!("a{i}"), x.clone()),
            entry(format!("b{i}"), y.clone()),
        ]
        .iter()
        .collect();
        let second: AuditBatch = [entry(format!("c{i}"), y), entry(format!("d{i}"), x)]
            .iter()
            .collect();
        let (a, b) = tokio::join!(one.insert_audit(&first), two.insert_audit(&second));
        a.unwrap();
        b.unwrap();
    }
    drop(one);
    drop(two);
    drop_database(&url).await;
}

/// Two instances on one database: the first keeps the id of a grant it
/// wrote; the second prunes that grant (no token uses it any more). The
/// first must see that its kept id is gone and write the grant again, or
/// its next tokens would point at no grant and vanish from `audit_tokens`.
async fn a_grant_pruned_by_another_instance_is_written_again(backend: Backend) {
    use crate::helpers::{drop_database, fresh_database};
    use ficha::audit::{AuditBatch, AuditQuery, AuditRecord};
    use ficha::store::{connect, PoolSettings};
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(backend, &dir).await else {
        return;
    };
    let one = connect(&url, &PoolSettings::default()).await.unwrap();
    let two = connect(&url, &PoolSettings::default()).await.unwrap();
    let record = |jti: &str, iat: i64| AuditRecord {
        address: Some("10.0.0.7".into()),
        ..record(jti, "wallet", iat)
    };
    let first: AuditBatch = [record("j-1", 1_700_000_000)].iter().collect();
    one.insert_audit(&first).await.unwrap();
    assert_eq!(two.prune_audit(1_800_000_000).await.unwrap(), 1);
    assert_eq!(grant_clients(backend, &url).await, Vec::<String>::new());
    let again = record("j-2", 1_900_000_000);
    let second: AuditBatch = std::iter::once(&again).collect();
    one.insert_audit(&second).await.unwrap();
    let all = AuditQuery {
        client_id: None,
        since: None,
        until: None,
        jti: None,
        limit: 10,
    };
    assert_eq!(two.list_audit(&all).await.unwrap(), vec![again.clone()]);
    // And the id written the second time is kept and good.
    let third = record("j-3", 1_900_000_001);
    one.insert_audit(&std::iter::once(&third).collect())
        .await
        .unwrap();
    assert_eq!(two.list_audit(&all).await.unwrap(), vec![third, again]);
    drop(one);
    drop(two);
    drop_database(&url).await;
}

#[tokio::test]
async fn a_grant_pruned_by_another_instance_is_written_again_on_sqlite() {
    a_grant_pruned_by_another_instance_is_written_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_grant_pruned_by_another_instance_is_written_again_on_postgres() {
    a_grant_pruned_by_another_instance_is_written_again(Backend::Postgres).await;
}

/// A prune deletes grants by their `last_iat` alone. A grant whose row an
/// instance has kept must have it raised when a later batch brings newer
/// tokens, or a prune of the older ones would take the grant, and the
/// newer tokens would vanish from `audit_tokens`. Grants no token needs
/// any more go.
async fn a_grant_in_use_outlives_a_prune_of_its_older_tokens(backend: Backend) {
    use crate::helpers::{drop_database, fresh_database};
    use ficha::audit::{AuditBatch, AuditQuery};
    use ficha::store::{connect, PoolSettings};
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(backend, &dir).await else {
        return;
    };
    let store = connect(&url, &PoolSettings::default()).await.unwrap();
    const DAY: i64 = 86_400;
    let t0 = 1_700_000_000;
    let old: AuditBatch = [record("j-1", "busy", t0), record("j-2", "idle", t0)]
        .iter()
        .collect();
    store.insert_audit(&old).await.unwrap();
    // The same store, so the grant's row is kept from the first batch.
    let newer = record("j-3", "busy", t0 + 30 * DAY);
    store
        .insert_audit(&std::iter::once(&newer).collect())
        .await
        .unwrap();
    assert_eq!(store.prune_audit(t0 + 10 * DAY).await.unwrap(), 2);
    let all = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(store.list_audit(&all).await.unwrap(), vec![newer.clone()]);
    assert_eq!(grant_clients(backend, &url).await, vec!["busy".to_owned()]);
    let of_busy = AuditQuery {
        client_id: Some("busy".into()),
        ..all.clone()
    };
    assert_eq!(store.list_audit(&of_busy).await.unwrap(), vec![newer]);
    drop(store);
    drop_database(&url).await;
}

#[tokio::test]
async fn a_grant_in_use_outlives_a_prune_of_its_older_tokens_on_sqlite() {
    a_grant_in_use_outlives_a_prune_of_its_older_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_grant_in_use_outlives_a_prune_of_its_older_tokens_on_postgres() {
    a_grant_in_use_outlives_a_prune_of_its_older_tokens(Backend::Postgres).await;
}

/// A batch larger than one statement's rows (1,000) is written whole, in
/// several paced statements within one transaction: every row comes back,
/// with its grant.
async fn a_batch_of_several_statements_is_written_whole(backend: Backend) {
    use crate::helpers::{drop_database, fresh_database};
    use ficha::audit::{AuditBatch, AuditQuery, AuditRecord};
    use ficha::store::{connect, PoolSettings};
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(backend, &dir).await else {
        return;
    };
    let store = connect(&url, &PoolSettings::default()).await.unwrap();
    let t0 = 1_700_000_000;
    let records: Vec<AuditRecord> = (0..2_500)
        .map(|i| AuditRecord {
            address: (i % 2 == 0).then(|| "10.1.2.3".into()),
            ..record(&format!("j-{i:05}"), &format!("c{}", i % 7), t0 + i)
        })
        .collect();
    let batch: AuditBatch = records.iter().collect();
    store.insert_audit(&batch).await.unwrap();
    let all = AuditQuery {
        limit: 10_000,
        ..AuditQuery::default()
    };
    let mut expected = records.clone();
    expected.reverse();
    assert_eq!(store.list_audit(&all).await.unwrap(), expected);
    let of_c3 = AuditQuery {
        client_id: Some("c3".into()),
        ..all
    };
    let c3: Vec<AuditRecord> = expected
        .into_iter()
        .filter(|r| r.client_id == "c3")
        .collect();
    assert_eq!(store.list_audit(&of_c3).await.unwrap(), c3);
    drop(store);
    drop_database(&url).await;
}

#[tokio::test]
async fn a_batch_of_several_statements_is_written_whole_on_sqlite() {
    a_batch_of_several_statements_is_written_whole(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_batch_of_several_statements_is_written_whole_on_postgres() {
    a_batch_of_several_statements_is_written_whole(Backend::Postgres).await;
}
