//! PostgreSQL over TLS (issue 14): the database holds secret hashes, sealed
//! keys and the public keys every verifier trusts, so `sslmode=require`
//! must really encrypt, and `verify-full` must refuse a certificate that
//! does not name the host. This machine kind's PostgreSQL has SSL on with
//! Debian's snakeoil certificate (CN=localhost).

use std::path::Path;

use crate::helpers::{fresh_database, pg_admin_url, run_cli, Backend, Options, TestApp};

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the server accepts TLS at all; `None` (skip) when it does not
/// and this is not CI.
async fn server_speaks_tls() -> Option<()> {
    use sqlx::Connection as _;
    let url = format!("{}?sslmode=require", pg_admin_url());
    match sqlx::PgConnection::connect(&url).await {
        Ok(_) => Some(()),
        Err(e) if !in_ci() => {
            eprintln!("skipped: PostgreSQL does not accept TLS here: {e}");
            None
        }
        Err(e) => panic!("PostgreSQL must accept TLS in CI: {e}"),
    }
}

#[tokio::test]
async fn sslmode_require_serves_tokens_over_an_encrypted_connection() {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(Backend::Postgres, &dir).await else {
        return;
    };
    if server_speaks_tls().await.is_none() {
        return;
    }
    let tls_url = format!("{url}?sslmode=require");
    let app = TestApp::spawn_with_url(&tls_url, Options::default()).await;
    app.token_for("payvalida", "client_secret", None).await;
    // Every connection of the server's pool to this database is TLS.
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap()
    };
    let (connections, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(connections > 0);
    assert_eq!(connections, encrypted);
    app.cleanup().await;
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_name() {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(url) = fresh_database(Backend::Postgres, &dir).await else {
        return;
    };
    if server_speaks_tls().await.is_none() {
        return;
    }
    if !Path::new(SNAKEOIL).exists() {
        assert!(!in_ci(), "{SNAKEOIL} is missing");
        eprintln!("skipped: no {SNAKEOIL}");
        return;
    }
    // The certificate names "localhost"; the URL's host is 127.0.0.1.
    let strict = format!("{url}?sslmode=verify-full&sslrootcert={SNAKEOIL}");
    let out = run_cli(&strict, &dir.path().join("keys"), &["migrate"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.to_lowercase().contains("certificate") || stderr.contains("tls"),
        "{stderr}"
    );
    // One clear line, no panic.
    assert!(!stderr.contains("panicked"), "{stderr}");
    crate::helpers::drop_database(&url).await;
}
