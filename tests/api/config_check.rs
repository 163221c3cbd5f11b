//! `ficha config check` (SPEC §10): the configuration as `serve` loads it,
//! checked without changing anything; exit 0 exactly when `serve` would
//! start, one line per finding, secrets masked.

use std::process::Output;

use ficha::oauth::Mode;

use crate::helpers::{run_cli, Backend, Options, TestApp};

fn check(db_url: &str, key_dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec!["config", "check"];
    args.extend_from_slice(extra);
    run_cli(db_url, key_dir, &args)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The URL with a password the server ignores (trust authentication).
fn with_password(url: &str) -> String {
    url.replacen(
        "postgres://postgres@",
        "postgres://postgres:Pa55wordNotShown@",
        1,
    )
}

async fn a_good_production_configuration_passes(backend: Backend) {
    let opts = Options {
        mode: Mode::Production,
        ..Options::default()
    };
    let Some(app) = TestApp::spawn_on(backend, opts).await else {
        return;
    };
    let url = match backend {
        Backend::Postgres => with_password(&app.db_url),
        Backend::Sqlite => app.db_url.clone(),
    };
    let out = check(&url, &app.key_dir, &[]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("ok    schema: at version"), "{all}");
    assert!(all.contains("ok    keys: active ES256 key"), "{all}");
    assert!(all.contains("ok    seeds: no sandbox seed"), "{all}");
    assert!(!all.contains("error"), "{all}");
    if backend == Backend::Postgres {
        assert!(!all.contains("Pa55wordNotShown"), "{all}");
        assert!(all.contains("postgres:****@"), "{all}");
    }
    // --json: the same findings and the masked configuration.
    let out = check(&url, &app.key_dir, &["--json", "--bind", "127.0.0.1:9443"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["config"]["mode"], "production");
    assert_eq!(v["config"]["bind"], "127.0.0.1:9443");
    assert_eq!(v["config"]["issuer"], "http://127.0.0.1:9443");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "ok"));
    assert!(!out.stdout.windows(16).any(|w| w == b"Pa55wordNotShown"));
    app.cleanup().await;
}

#[tokio::test]
async fn config_check_passes_a_good_production_config_on_sqlite() {
    a_good_production_configuration_passes(Backend::Sqlite).await;
}

#[tokio::test]
async fn config_check_passes_a_good_production_config_on_postgres() {
    a_good_production_configuration_passes(Backend::Postgres).await;
}

#[tokio::test]
async fn config_check_fails_without_a_key_and_creates_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let keys = dir.path().join("keys");
    // A database that does not exist is not created.
    let missing = dir.path().join("nothing.db");
    let url = format!("sqlite://{}", missing.display());
    let out = check(&url, &keys, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("error database:"), "{}", text(&out));
    assert!(!missing.exists());
    assert!(!keys.exists());

    // A migrated database without a key.
    let url = format!("sqlite://{}/ficha.db", dir.path().display());
    assert!(run_cli(&url, &keys, &["migrate"]).status.success());
    let out = check(&url, &keys, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "error keys: no active ES256 signing key: create one with `ficha key generate`"
        ),
        "{all}"
    );
    assert!(all.contains("configuration check failed"), "{all}");
    assert!(!keys.exists(), "config check created the key directory");

    // A KEK is masked.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(["config", "check", "--json", "--database", &url])
        .env("FICHA_KEY_DIR", &keys)
        .env("FICHA_KEK", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .env_remove("FICHA_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("MDEyMzQ1Njc4"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["config"]["kek"], "****");
    assert_eq!(v["ok"], false);
}

#[tokio::test]
async fn config_check_fails_on_sandbox_seeds_in_a_production_database() {
    let Some(mut app) = TestApp::spawn_on(Backend::Sqlite, Options::default()).await else {
        return;
    };
    app.stop().await;
    // As a sandbox it would start...
    let out = check(&app.db_url, &app.key_dir, &["--sandbox"]);
    assert!(out.status.success(), "{}", text(&out));
    // ...but production refuses the seeds.
    let out = check(&app.db_url, &app.key_dir, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let line = all
        .lines()
        .find(|l| l.starts_with("error seeds:"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(line.contains("payvalida"), "{line}");
    // serve agrees.
    let serve = ficha::startup::Application::build(crate::helpers::config(
        &app.db_url,
        app.key_dir.clone(),
        &Options {
            mode: Mode::Production,
            ..Options::default()
        },
    ))
    .await;
    assert!(serve.is_err());
}

#[tokio::test]
async fn config_check_reports_a_bad_config_file_as_a_finding() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("ficha.toml");
    std::fs::write(&file, "log_format = \"xml\"\n").unwrap();
    let out = run_cli(
        "sqlite://unused.db",
        dir.path(),
        &["config", "check", "--config", file.to_str().unwrap()],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("error configuration: log_format must be pretty or json"),
        "{all}"
    );
}

/// Each number `serve --help` gives as a flag's default is the value
/// `Config::load` takes when nothing is set: the help text repeats the
/// defaults by hand (clap's own default would make every flag look set and
/// beat the config file), so this keeps the two in step.
#[test]
fn the_defaults_serve_help_names_are_the_ones_loaded() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/d.db", dir.path().display());
    let out = check(&db, &dir.path().join("keys"), &["--sandbox", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = &report["config"];
    let mut flag = None;
    let mut compared = 0;
    for line in help.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("--") {
            flag = rest.split_whitespace().next().map(|f| f.replace('-', "_"));
            continue;
        }
        let Some((_, after)) = line.split_once("[default: ") else {
            continue;
        };
        // A number alone ("[default: 10]", "[default: 1209600, 14 days]"),
        // not an address or words.
        let value = after.split([']', ',']).next().unwrap_or_default();
        let (Some(key), Ok(named)) = (&flag, value.parse::<u64>()) else {
            continue;
        };
        assert_eq!(config[key].as_u64(), Some(named), "--{key}: {line}");
        compared += 1;
    }
    assert!(
        compared >= 14,
        "only {compared} numeric defaults found in:\n{help}"
    );
}
