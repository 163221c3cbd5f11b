//! Every config-file key is honoured as its flag is (SPEC §10), and the
//! real binary's logs are clean when stderr is not a terminal: JSON when
//! the file says `log_format = "json"`, no colour codes otherwise.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser as _;
use ficha::cli::Cli;

use crate::helpers::basic_header;

/// `(file key = value, the same as serve's flag)`, one per config key.
const KEYS: &[(&str, &[&str])] = &[
    (
        "database_url = \"sqlite://x/y.db\"",
        &["--database", "sqlite://x/y.db"],
    ),
    ("bind = \"127.0.0.1:9999\"", &["--bind", "127.0.0.1:9999"]),
    (
        "issuer = \"https://id.example\"",
        &["--issuer", "https://id.example"],
    ),
    ("audience = \"shop\"", &["--audience", "shop"]),
    ("key_dir = \"elsewhere\"", &["--key-dir", "elsewhere"]),
    ("log_format = \"json\"", &["--log-format", "json"]),
    ("pool_max_connections = 3", &["--pool-max-connections", "3"]),
    (
        "pool_acquire_timeout_ms = 1234",
        &["--pool-acquire-timeout-ms", "1234"],
    ),
    ("sync_interval_ms = 321", &["--sync-interval-ms", "321"]),
    ("client_cache_size = 77", &["--client-cache-size", "77"]),
    (
        "throttle_client_per_minute = 5",
        &["--throttle-client-per-minute", "5"],
    ),
    (
        "throttle_address_per_minute = 6",
        &["--throttle-address-per-minute", "6"],
    ),
    ("hash_concurrency = 7", &["--hash-concurrency", "7"]),
    ("hash_queue_size = 8", &["--hash-queue-size", "8"]),
    (
        "trusted_proxies = [\"10.0.0.0/8\"]",
        &["--trusted-proxies", "10.0.0.0/8"],
    ),
    (
        "refresh_token_ttl_secs = 99",
        &["--refresh-token-ttl-secs", "99"],
    ),
    (
        "refresh_token_max_lifetime_secs = 999",
        &["--refresh-token-max-lifetime-secs", "999"],
    ),
    (
        "sandbox_capture_size = 11",
        &["--sandbox-capture-size", "11"],
    ),
    (
        "http_header_timeout_secs = 11",
        &["--http-header-timeout-secs", "11"],
    ),
    (
        "http_idle_timeout_secs = 61",
        &["--http-idle-timeout-secs", "61"],
    ),
    ("max_connections = 99", &["--max-connections", "99"]),
    ("audit_retention_days = 9", &["--audit-retention-days", "9"]),
    (
        "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"",
        &["--tls-cert", "c.pem", "--tls-key", "k.pem"],
    ),
    (
        "[dialect_paths]\nnequi = \"off\"",
        &["--dialect-path", "nequi=off"],
    ),
];

fn config_of(args: &[&str]) -> String {
    let mut all = vec!["ficha", "serve", "--sandbox"];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).unwrap();
    format!("{:?}", cli.config().unwrap())
}

#[test]
fn every_config_file_key_is_honoured_as_its_flag_is() {
    let dir = tempfile::TempDir::new().unwrap();
    let defaults = config_of(&[]);
    for (i, (line, flag)) in KEYS.iter().enumerate() {
        let file = dir.path().join(format!("{i}.toml"));
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let from_file = config_of(&["--config", file.to_str().unwrap()]);
        let from_flag = config_of(flag);
        assert_ne!(from_file, defaults, "{line} changed nothing");
        assert_eq!(from_file, from_flag, "{line} is not read as {flag:?}");
    }
    // The KEK file, whose value Debug never shows.
    let kek = dir.path().join("kek");
    std::fs::write(&kek, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let file = dir.path().join("kek.toml");
    std::fs::write(&file, format!("kek_file = {:?}\n", kek.to_str().unwrap())).unwrap();
    let from_file = config_of(&["--config", file.to_str().unwrap()]);
    assert!(from_file.contains("kek: Some("), "{from_file}");
    assert!(!defaults.contains("kek: Some("));
}

#[test]
fn the_database_assumed_when_none_is_named() {
    let config = |args: &[&str]| {
        let mut all = vec!["ficha"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().config().unwrap()
    };
    let sandbox_db = Some("sqlite://data/ficha.db".to_owned());
    // A sandbox, and the commands run beside it, use the sandbox's file.
    assert_eq!(config(&["serve", "--sandbox"]).database_url, sandbox_db);
    assert_eq!(
        config(&["config", "check", "--sandbox"]).database_url,
        sandbox_db
    );
    assert_eq!(config(&["client", "list"]).database_url, sandbox_db);
    assert_eq!(config(&["token", "verify", "t"]).database_url, sandbox_db);
    // Production must name one; a verifier with a remote JWKS needs none.
    let production = config(&["serve"]);
    assert_eq!(production.database_url, None);
    let err = production.database().unwrap_err().to_string();
    assert!(err.contains("explicit database"), "{err}");
    let jwks = [
        "token",
        "verify",
        "t",
        "--jwks",
        "http://h/.well-known/jwks.json",
    ];
    assert_eq!(config(&jwks).database_url, None);
    // A named one always wins.
    for args in [
        &["serve"][..],
        &["serve", "--sandbox"],
        &["key", "list"],
        &jwks,
    ] {
        let mut named = vec!["--database", "sqlite://named.db"];
        named.extend_from_slice(args);
        assert_eq!(config(&named).database().unwrap(), "sqlite://named.db");
    }
}

#[test]
fn a_bad_log_format_is_refused() {
    let cli = Cli::try_parse_from(["ficha", "serve", "--sandbox", "--log-format", "xml"]).unwrap();
    let err = cli.config().unwrap_err().to_string();
    assert!(err.contains("log_format must be pretty or json"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `serve --sandbox` in a fresh directory with `extra` arguments and
/// stderr to a pipe, issues one token, stops it and returns its stderr.
async fn serve_and_capture_stderr(config: Option<&str>, extra: &[&str]) -> String {
    let stderr = serve_and_capture_stderr_at(config, extra, "info").await;
    assert!(stderr.contains("token issued"), "{stderr}");
    stderr
}

/// [`serve_and_capture_stderr`] under `RUST_LOG=rust_log`, whatever it logs.
async fn serve_and_capture_stderr_at(
    config: Option<&str>,
    extra: &[&str],
    rust_log: &str,
) -> String {
    let dir = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_ficha"));
    serve
        .current_dir(dir.path())
        .args(["serve", "--sandbox", "--bind", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("RUST_LOG", rust_log)
        .env_remove("NO_COLOR")
        .env_remove("FICHA_DATABASE_URL")
        .env_remove("FICHA_KEY_DIR")
        .env_remove("FICHA_CONFIG")
        .env_remove("FICHA_LOG_FORMAT")
        .env_remove("FICHA_KEK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(text) = config {
        std::fs::write(dir.path().join("ficha.toml"), text).unwrap();
        serve.args(["--config", "ficha.toml"]);
    }
    let mut child = KillOnDrop(serve.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "ficha did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = http
        .post(format!("{base}/oauth2/token"))
        .header("Authorization", basic_header("payvalida", "client_secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let exit = crate::helpers::terminate(&mut child.0);
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[tokio::test]
async fn log_format_json_in_the_config_file_makes_every_line_json() {
    let stderr = serve_and_capture_stderr(Some("log_format = \"json\"\n"), &[]).await;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    // The per-token line, written without tracing's formatter, in json()'s shape.
    let issued: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.contains("token issued"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(issued.len(), 1, "{stderr}");
    let line = &issued[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "ficha::audit");
    let fields = &line["fields"];
    assert_eq!(fields["message"], "token issued");
    assert_eq!(fields["client_id"], "payvalida");
    assert_eq!(fields["address"], "127.0.0.1");
    assert_eq!(fields["jti"].as_str().map(str::len), Some(22), "{line}");
    assert!(
        fields["kid"].is_string() && fields["scope"].is_string(),
        "{line}"
    );
    assert!(
        fields["exp"].as_i64().is_some_and(|e| e > 1_700_000_000),
        "{line}"
    );
}

#[tokio::test]
async fn the_log_filter_still_decides_the_per_token_line() {
    let stderr = serve_and_capture_stderr_at(
        Some("log_format = \"json\"\n"),
        &[],
        "info,ficha::audit=off",
    )
    .await;
    assert!(
        stderr.lines().any(|l| l.starts_with('{')),
        "no JSON log at all: {stderr}"
    );
    assert!(!stderr.contains("token issued"), "{stderr}");
}

#[tokio::test]
async fn pretty_logs_to_a_pipe_carry_no_colour_codes() {
    let stderr = serve_and_capture_stderr(None, &[]).await;
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a pipe: {stderr:?}"
    );
    // The flag wins over the file.
    let stderr =
        serve_and_capture_stderr(Some("log_format = \"json\"\n"), &["--log-format", "pretty"])
            .await;
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
    assert!(!stderr.trim_start().starts_with('{'), "{stderr}");
}

/// Kills the server if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
