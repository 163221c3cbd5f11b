//! Every CLI command, against the same database a running server uses.

use std::os::unix::fs::PermissionsExt as _;

use crate::both_backends;
use crate::helpers::{run_cli, Options, TestApp};

both_backends!(
    client_lifecycle_through_the_cli,
    Options::default(),
    |app: TestApp| async move {
        let created = app.cli_json(&[
            "client",
            "create",
            "--id",
            "wallet-1",
            "--scopes",
            "transaction confirmation annulment",
            "--name",
            "Wallet one",
            "--ttl",
            "600",
            "--audience",
            "https://wallet.example",
        ]);
        assert_eq!(created["client_id"], "wallet-1");
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        assert!(secret.len() >= 43);
        assert_eq!(
            created["scopes"],
            serde_json::json!(["annulment", "confirmation", "transaction"])
        );

        // The secret is never stored or shown again.
        let shown = app.cli_json(&["client", "show", "wallet-1"]);
        assert!(!shown.to_string().contains(&secret));
        assert_eq!(shown["name"], "Wallet one");
        assert_eq!(shown["ttl"], 600);
        assert_eq!(shown["audience"], "https://wallet.example");
        assert_eq!(shown["secrets"].as_array().unwrap().len(), 1);
        assert!(shown["secrets"][0]["age_seconds"].as_i64().unwrap() >= 0);

        let t = app.token_for("wallet-1", &secret, Some("annulment")).await;
        let (_, claims) = crate::helpers::jwt_parts(t["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], "https://wallet.example");

        let list = app.cli_json(&["client", "list"]);
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"wallet-1") && ids.contains(&"payvalida"));

        let updated = app.cli_json(&[
            "client",
            "update",
            "wallet-1",
            "--scopes",
            "transaction",
            "--introspect",
            "true",
        ]);
        assert_eq!(updated["scopes"], serde_json::json!(["transaction"]));
        assert_eq!(updated["introspect"], true);

        assert_eq!(
            app.cli_json(&["client", "disable", "wallet-1"])["enabled"],
            false
        );
        assert_eq!(
            app.cli_json(&["client", "show", "wallet-1"])["enabled"],
            false
        );
        assert_eq!(
            app.cli_json(&["client", "enable", "wallet-1"])["enabled"],
            true
        );

        let rotated = app.cli_json(&["client", "rotate-secret", "wallet-1", "--grace", "300"]);
        assert_eq!(rotated["client_id"], "wallet-1");
        assert_ne!(rotated["client_secret"], secret);
        let shown = app.cli_json(&["client", "show", "wallet-1"]);
        assert_eq!(shown["secrets"].as_array().unwrap().len(), 2, "{shown}");

        assert_eq!(
            app.cli_json(&["client", "delete", "wallet-1"])["deleted"],
            true
        );
        let out = app.cli(&["client", "show", "wallet-1"]);
        assert!(!out.status.success());
    }
);

#[tokio::test]
async fn cli_errors_are_one_clear_line_and_a_non_zero_exit() {
    let app = TestApp::spawn().await;
    let cases: Vec<Vec<&str>> = vec![
        vec!["client", "show", "nobody"],
        vec!["client", "delete", "nobody"],
        vec!["client", "disable", "nobody"],
        vec!["client", "rotate-secret", "nobody"],
        vec!["client", "create", "--id", "payvalida", "--scopes", "x"],
        vec!["client", "create", "--id", "bad\tid", "--scopes", "x"],
        vec!["client", "create", "--scopes", "a\"b"],
        vec!["client", "create", "--scopes", "x", "--grants", "implicit"],
        vec!["client", "create", "--scopes", "x", "--ttl", "0"],
        vec!["key", "retire", "no-such-kid"],
        vec!["token", "verify", "not-a-token"],
    ];
    for args in cases {
        let out = app.cli(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn generated_ids_and_secrets_read_the_same_both_ways() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    app.token_for(&id, &secret, None).await;
}

#[tokio::test]
async fn migrate_config_file_and_environment_variables() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}/cfg.db", dir.path().display());
    let keys = dir.path().join("k");
    // Environment variable.
    let out = run_cli(&db, &keys, &["migrate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["migrated"],
        true
    );

    // Config file, with no FICHA_DATABASE_URL in the environment.
    let cfg = dir.path().join("ficha.toml");
    std::fs::write(
        &cfg,
        format!(
            "database_url = \"{db}\"\nkey_dir = \"{}\"\n",
            keys.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "key",
            "generate",
            "--json",
        ])
        .env_remove("FICHA_DATABASE_URL")
        .env_remove("FICHA_KEY_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(key["state"], "active");
    let pem = keys.join(format!("{}.pem", key["kid"].as_str().unwrap()));
    let mode = std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The flag beats the file.
    let other = format!("sqlite://{}/other.db", dir.path().display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--database",
            &other,
            "key",
            "list",
            "--json",
        ])
        .env_remove("FICHA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );

    // A bad config file is one clear error.
    std::fs::write(&cfg, "no_such_setting = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(["--config", cfg.to_str().unwrap(), "client", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid config file"));
}

#[tokio::test]
async fn token_verify_prints_claims_and_checks_scope() {
    let app = TestApp::spawn().await;
    let t = app
        .token_for("payvalida", "client_secret", Some("transaction"))
        .await;
    let token = t["access_token"].as_str().unwrap();
    let out = app.cli(&["token", "verify", token]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["client_id"], "payvalida");
    assert!(app
        .cli(&["token", "verify", token, "--scope", "transaction"])
        .status
        .success());
    let out = app.cli(&["token", "verify", token, "--scope", "annulment"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope"));
}

#[test]
fn the_example_config_file_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    ficha::config::Settings::from_file(&path).unwrap();
}

#[tokio::test]
async fn token_verify_refuses_expired_foreign_issuer_and_revoked_tokens() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(&["--scopes", "transaction", "--ttl", "1"]);
    let short = app.token_for(&id, &secret, None).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = app
        .token_for("payvalida", "client_secret", Some("transaction"))
        .await;
    let token = t["access_token"].as_str().unwrap();

    let out = app.cli(&["token", "verify", token, "--issuer", &app.base]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.cli(&[
        "token",
        "verify",
        token,
        "--issuer",
        "https://auth.elsewhere.example",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("issued by"));

    assert_eq!(app.revoke(("payvalida", "client_secret"), token).await, 200);
    let out = app.cli(&["token", "verify", token]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end(), "error: the token has been revoked");

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let out = app.cli(&["token", "verify", &short]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    app.cleanup().await;
}

// The CLI is a blocking child process that calls back into the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_verify_checks_a_token_against_a_remote_jwks() {
    let app = TestApp::spawn().await;
    let token = app
        .token_for("payvalida", "client_secret", Some("transaction"))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = app.url("/.well-known/jwks.json");
    // No database at all: a verifier on another machine, in an empty
    // directory (nothing may be created there).
    let cwd = tempfile::TempDir::new().unwrap();
    let remote = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
            .args(args)
            .current_dir(cwd.path())
            .env_remove("FICHA_DATABASE_URL")
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_ISSUER")
            .output()
            .unwrap()
    };

    let out = remote(&["token", "verify", &token, "--jwks", &jwks]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["client_id"], "payvalida");
    assert_eq!(claims["iss"], app.base);
    assert!(String::from_utf8_lossy(&out.stderr).contains("revocation not checked"));
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);

    let out = remote(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &jwks,
        "--scope",
        "annulment",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope annulment"));

    // With a database, the denylist counts.
    assert_eq!(
        app.revoke(("payvalida", "client_secret"), &token).await,
        200
    );
    let out = app.cli(&["token", "verify", &token, "--jwks", &jwks]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));

    // Another server's JWKS does not know the key.
    let other = TestApp::spawn().await;
    let out = remote(&[
        "token",
        "verify",
        &token,
        "--jwks",
        &other.url("/.well-known/jwks.json"),
        "--issuer",
        &app.base,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key is unknown"));

    // One clear line for an unusable URL.
    for url in [
        "https://auth.wallet.example/.well-known/jwks.json".to_owned(),
        format!("{}/no-such-path", app.base),
    ] {
        let out = remote(&["token", "verify", &token, "--jwks", &url]);
        assert!(!out.status.success(), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{url}: {err}");
    }
    other.cleanup().await;
    app.cleanup().await;
}

/// Key ids are base64url thumbprints and may begin with `-`; client ids may
/// too. Neither may be taken for a flag.
#[tokio::test]
async fn ids_that_begin_with_a_hyphen_are_ids_not_flags() {
    let app = TestApp::spawn().await;
    let created = app.cli_json(&["client", "create", "--id=-shop", "--scopes", "transaction"]);
    assert_eq!(created["client_id"], "-shop");
    assert_eq!(
        app.cli_json(&["client", "show", "-shop"])["client_id"],
        "-shop"
    );
    assert_eq!(
        app.cli_json(&["client", "disable", "-shop"])["enabled"],
        false
    );
    let out = app.cli(&["key", "retire", "-no-such-kid"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key with kid -no-such-kid"));
}

/// `ficha … | head` ends quietly: the reader going away ends the command
/// with SIGPIPE, as with other Unix tools, not with a "failed printing to
/// stdout" panic.
#[test]
fn output_piped_into_a_reader_that_stops_early_ends_without_a_panic() {
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte and hang up, as `head -c1` would; the script is far
    // longer than the pipe's buffer, so the writer meets the closed pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(
        status.signal(),
        Some(libc_sigpipe()),
        "{status:?}: {stderr}"
    );
}

/// SIGPIPE's number on Linux.
fn libc_sigpipe() -> i32 {
    13
}

/// A sandbox's first start prints on stdout, before "listening", the keys
/// it generated and the seeded credentials to paste (README "Sandbox
/// seeds"); a second start on the same database prints neither.
#[test]
fn a_first_sandbox_start_prints_its_keys_and_seeds_before_listening() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/sandbox.db", dir.path().display());
    let start = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
            .args(["serve", "--sandbox", "--bind", "127.0.0.1:0"])
            .env("FICHA_DATABASE_URL", &db)
            .env("FICHA_KEY_DIR", dir.path().join("keys"))
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_KEK")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut before = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.starts_with("ficha listening on ") {
                break;
            }
            before.push(line);
        }
        // A stop sent as soon as "listening" is printed drains the
        // server: the handlers are in place before it.
        assert!(crate::helpers::terminate(&mut child).success());
        before
    };
    let first = start();
    assert!(
        first
            .iter()
            .any(|l| l.starts_with("generated ES256 signing key ")),
        "{first:?}"
    );
    assert!(
        first.iter().any(
            |l| l.starts_with("seeded sandbox client (payvalida): client_id=")
                && l.contains("client_secret=")
        ),
        "{first:?}"
    );
    assert!(
        first
            .iter()
            .any(|l| l.starts_with("seeded sandbox user (fegora): username=")),
        "{first:?}"
    );
    assert_eq!(start(), Vec::<String>::new());
}
