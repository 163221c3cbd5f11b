//! Clients bound to their dialects (SPEC §5): sandbox seeds speak only
//! their own provider's dialect, and the migration that introduced the
//! binding keeps existing clients working where they worked.

use std::time::Duration;

use crate::both_backends;
use crate::helpers::{basic_header, fresh_database, run_cli, Backend, Options, TestApp};

async fn nequi(app: &TestApp, id: &str, secret: &str) -> (u16, serde_json::Value) {
    let resp = app
        .http
        .post(app.url("/nequi/oauth2/token?grant_type=client_credentials"))
        .header("Authorization", basic_header(id, secret))
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap())
}

both_backends!(
    sandbox_seeds_speak_only_their_own_dialect,
    Options::default(),
    |app: TestApp| async move {
        // The Nequi seed on Nequi's path, not on the standard one.
        let (s, body) = nequi(&app, "nequi-sandbox", "nequi-sandbox-secret").await;
        assert_eq!((s, &body["expires_in"]), (200, &serde_json::json!(3600)));
        let resp = app
            .post_token(
                Some(("nequi-sandbox", "nequi-sandbox-secret")),
                &[("grant_type", "client_credentials")],
            )
            .await;
        let (s, body) = (
            resp.status(),
            resp.json::<serde_json::Value>().await.unwrap(),
        );
        assert_eq!(
            (s.as_u16(), body["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
        // The Payválida seed is refused on Nequi's path, in Nequi's shape.
        let (s, body) = nequi(&app, "payvalida", "client_secret").await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
        let shown = app.cli_json(&["client", "show", "nequi-sandbox"]);
        assert_eq!(shown["dialects"], serde_json::json!(["nequi"]));
        // An unknown dialect name is refused by the CLI.
        let out = app.cli(&["client", "update", "payvalida", "--dialects", "owin"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dialect"));
    }
);

/// Runs migrations up to `before` (exclusive), inserts rows, then lets the
/// real `ficha migrate` finish: existing clients are bound to payvalida,
/// seeds to payvalida plus their own dialect.
async fn migration_binds_existing_clients(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(backend, &dir).await else {
        return;
    };
    let folder = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut migrator = sqlx::migrate::Migrator::new(path).await.unwrap();
    let all = migrator.migrations.to_vec();
    let binding = all
        .iter()
        .position(|m| m.description.contains("client dialects"))
        .expect("the client dialects migration");
    migrator.migrations = all[..binding].to_vec().into();
    let insert =
        "INSERT INTO clients (client_id, scopes, grants, auth_methods, created_at, updated_at) \
                  VALUES ($1, 'transaction', 'client_credentials', 'client_secret_basic', 0, 0)";
    match backend {
        Backend::Sqlite => {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
                .await
                .unwrap();
            migrator.run(&pool).await.unwrap();
            for id in ["old-client", "nequi-sandbox", "apiApp"] {
                sqlx::query(insert).bind(id).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for id in ["old-client", "nequi-sandbox", "apiApp"] {
                sqlx::query(insert).bind(id).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
    let keys = dir.path().join("keys");
    let out = run_cli(&url, &keys, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dialects = |id: &str| {
        let out = run_cli(&url, &keys, &["client", "show", id, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["dialects"].clone()
    };
    assert_eq!(dialects("old-client"), serde_json::json!(["payvalida"]));
    assert_eq!(
        dialects("nequi-sandbox"),
        serde_json::json!(["nequi", "payvalida"])
    );
    assert_eq!(
        dialects("apiApp"),
        serde_json::json!(["fegora", "payvalida"])
    );
    crate::helpers::drop_database(&url).await;
}

#[tokio::test]
async fn the_migration_binds_existing_clients_on_sqlite() {
    tokio::time::timeout(
        Duration::from_secs(60),
        migration_binds_existing_clients(Backend::Sqlite),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_migration_binds_existing_clients_on_postgres() {
    tokio::time::timeout(
        Duration::from_secs(60),
        migration_binds_existing_clients(Backend::Postgres),
    )
    .await
    .unwrap();
}
