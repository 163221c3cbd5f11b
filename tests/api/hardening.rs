//! Small hardening points of issue 14: `--help` prints no environment
//! values, and the SQLite database file is owner-only.

use std::process::Command;

#[test]
fn help_never_prints_environment_values() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["client", "create", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ficha"))
            .args(args)
            .env("FICHA_DATABASE_URL", "postgres://ficha:s3cret-pw@db/ficha")
            .env("FICHA_KEK_FILE", "/secret/kek-path")
            .env("FICHA_ISSUER", "https://issuer-value.example")
            .env("FICHA_TRUSTED_PROXIES", "10.9.8.7")
            .env("FICHA_CLIENT_SECRET", "client-secret-value")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("FICHA_"), "{args:?}: {text}");
        for value in [
            "s3cret-pw",
            "kek-path",
            "issuer-value",
            "10.9.8.7",
            "client-secret-value",
        ] {
            assert!(!text.contains(value), "{args:?} printed {value}: {text}");
        }
    }
}

#[tokio::test]
async fn the_sqlite_database_file_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = crate::helpers::TestApp::spawn_on(
        crate::helpers::Backend::Sqlite,
        crate::helpers::Options::default(),
    )
    .await
    .unwrap();
    let path = app.dir.path().join("ficha.db");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    for suffix in ["-wal", "-shm"] {
        let side = app.dir.path().join(format!("ficha.db{suffix}"));
        if let Ok(meta) = std::fs::metadata(&side) {
            assert_eq!(meta.permissions().mode() & 0o077, 0, "{}", side.display());
        }
    }
    app.cleanup().await;
}
