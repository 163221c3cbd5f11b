//! Test harness: a real ficha server on a free port with its own database
//! (a SQLite file in a temp dir, or a fresh PostgreSQL database), its own
//! key directory, and helpers named after the endpoints.

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ficha::config::Config;
use ficha::http::tls::TlsPaths;
use ficha::http::{DialectPaths, HttpSettings, TrustedProxies};
use ficha::oauth::{AuthSettings, Clock, ManualClock, Mode, SystemClock};
use ficha::startup::Application;
use ficha::store::PoolSettings;
use tempfile::TempDir;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of tests that do not name one: `TEST_BACKEND=postgres`
    /// runs the whole suite on PostgreSQL (CI does both), SQLite otherwise.
    pub fn from_env() -> Backend {
        match std::env::var("TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// The admin URL of the PostgreSQL server used for per-test databases.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database URL for a test, or `None` when PostgreSQL is not
/// reachable outside CI (the test then reports itself skipped). In CI
/// (`CI=true`) an unreachable PostgreSQL fails the test.
pub async fn fresh_database(backend: Backend, dir: &TempDir) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}/ficha.db", dir.path().display())),
        Backend::Postgres => {
            use sqlx::Connection as _;
            let admin = pg_admin_url();
            let conn =
                tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin))
                    .await;
            let mut conn = match conn {
                Ok(Ok(c)) => c,
                other => {
                    if std::env::var("CI").is_ok_and(|v| v == "true") {
                        panic!(
                            "PostgreSQL is required in CI but unreachable at {admin}: {other:?}"
                        );
                    }
                    eprintln!("skipped: PostgreSQL not reachable at {admin}");
                    return None;
                }
            };
            let name = format!("ficha_test_{}", rand_suffix());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            Some(format!("{base}/{name}"))
        }
    }
}

/// Drops a per-test PostgreSQL database.
pub async fn drop_database(url: &str) {
    use sqlx::Connection as _;
    if !url.starts_with("postgres") {
        return;
    }
    let name = url.rsplit('/').next().unwrap_or_default().to_owned();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

fn rand_suffix() -> String {
    use rand::Rng as _;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// Options for building a test server.
#[derive(Clone)]
pub struct Options {
    pub mode: Mode,
    pub clock: Option<ManualClock>,
    pub throttle_client_per_minute: u32,
    pub throttle_address_per_minute: u32,
    pub dialect_paths: DialectPaths,
    pub trusted_proxies: TrustedProxies,
    pub hash_concurrency: usize,
    pub hash_queue_size: usize,
    pub refresh_max_lifetime: i64,
    pub http: HttpSettings,
    /// Serve HTTPS with this pair; the base URL is then `https://`.
    pub tls: Option<TlsPaths>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Sandbox,
            clock: None,
            // High enough that no ordinary test trips them.
            throttle_client_per_minute: 1000,
            throttle_address_per_minute: 10_000,
            dialect_paths: DialectPaths::default(),
            trusted_proxies: TrustedProxies::default(),
            hash_concurrency: AuthSettings::default().hash_concurrency,
            hash_queue_size: AuthSettings::default().hash_queue_size,
            refresh_max_lifetime: ficha::oauth::DEFAULT_REFRESH_MAX_LIFETIME,
            http: HttpSettings::default(),
            tls: None,
        }
    }
}

/// A running server and everything a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub http: reqwest::Client,
    pub db_url: String,
    pub key_dir: PathBuf,
    #[allow(dead_code)]
    pub dir: TempDir,
    pub clock: Option<ManualClock>,
    #[allow(dead_code)]
    pub backend: Backend,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn config(db_url: &str, key_dir: PathBuf, opts: &Options) -> Config {
    Config {
        mode: opts.mode,
        database_url: Some(db_url.to_owned()),
        bind: "127.0.0.1:0".parse().unwrap(),
        issuer: None,
        audience: None,
        key_dir,
        kek: None,
        // Many tests share one PostgreSQL server: keep each pool small.
        pool: PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        },
        sync_interval: Duration::from_millis(200),
        auth: AuthSettings {
            throttle_client_per_minute: opts.throttle_client_per_minute,
            throttle_address_per_minute: opts.throttle_address_per_minute,
            hash_concurrency: opts.hash_concurrency,
            hash_queue_size: opts.hash_queue_size,
            ..AuthSettings::default()
        },
        refresh_ttl: ficha::oauth::DEFAULT_REFRESH_TTL,
        refresh_max_lifetime: opts.refresh_max_lifetime,
        dialect_paths: opts.dialect_paths.clone(),
        trusted_proxies: opts.trusted_proxies.clone(),
        capture_capacity: ficha::sandbox::DEFAULT_CAPTURE_CAPACITY,
        http: opts.http,
        log_json: false,
        tls: opts.tls.clone(),
        audit_retention_days: ficha::audit::DEFAULT_RETENTION_DAYS,
    }
}

impl TestApp {
    /// A sandbox server on SQLite.
    pub async fn spawn() -> TestApp {
        Self::spawn_on(Backend::from_env(), Options::default())
            .await
            .unwrap()
    }

    /// A server on `backend`; `None` when that backend is unavailable here.
    pub async fn spawn_on(backend: Backend, opts: Options) -> Option<TestApp> {
        init_test_log();
        let dir = TempDir::new().unwrap();
        let db_url = fresh_database(backend, &dir).await?;
        let key_dir = dir.path().join("keys");
        if opts.mode == Mode::Production {
            // Production refuses to start without a key.
            let out = run_cli(&db_url, &key_dir, &["key", "generate"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut app = TestApp {
            base: String::new(),
            port: 0,
            http: reqwest::Client::new(),
            db_url,
            key_dir,
            dir,
            clock: opts.clock.clone(),
            backend,
            stop: None,
            server: None,
        };
        app.start(&opts).await.unwrap();
        Some(app)
    }

    /// A server on an existing database URL (e.g. through a proxy).
    pub async fn spawn_with_url(db_url: &str, opts: Options) -> TestApp {
        init_test_log();
        let dir = TempDir::new().unwrap();
        let key_dir = dir.path().join("keys");
        let mut app = TestApp {
            base: String::new(),
            port: 0,
            http: reqwest::Client::new(),
            db_url: db_url.to_owned(),
            key_dir,
            dir,
            clock: opts.clock.clone(),
            backend: Backend::Postgres,
            stop: None,
            server: None,
        };
        app.start(&opts).await.unwrap();
        app
    }

    /// Starts the server (again) on this app's database and key directory.
    pub async fn start(&mut self, opts: &Options) -> anyhow::Result<()> {
        let clock: Arc<dyn Clock> = match &opts.clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let application =
            Application::build_with_clock(config(&self.db_url, self.key_dir.clone(), opts), clock)
                .await?;
        self.port = application.port();
        self.base = application.base_url();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.server = Some(tokio::spawn(application.run_until(async move {
            let _ = rx.await;
        })));
        Ok(())
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }

    /// Stops the server and drops a PostgreSQL database.
    pub async fn cleanup(mut self) {
        self.stop().await;
        drop_database(&self.db_url).await;
    }

    /// The `/metrics` exposition.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One unlabelled counter or gauge from `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        metric_in(&self.metrics_text().await, name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST /oauth2/token with a form body and an optional Basic header.
    pub async fn post_token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url("/oauth2/token")).form(form);
        if let Some((id, secret)) = basic {
            req = req.header("Authorization", basic_header(id, secret));
        }
        req.send().await.unwrap()
    }

    /// POST a form to `path` with an optional Basic header.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.header("Authorization", basic_header(id, secret));
        }
        req.send().await.unwrap()
    }

    /// POST /oauth2/introspect as `caller`; returns (status, body).
    pub async fn introspect(&self, caller: (&str, &str), token: &str) -> (u16, serde_json::Value) {
        let resp = self
            .post_form("/oauth2/introspect", Some(caller), &[("token", token)])
            .await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// POST /oauth2/revoke as `caller`; returns the status.
    pub async fn revoke(&self, caller: (&str, &str), token: &str) -> u16 {
        self.post_form("/oauth2/revoke", Some(caller), &[("token", token)])
            .await
            .status()
            .as_u16()
    }

    /// GET /auth/verify?scope=.. with an optional bearer token.
    pub async fn auth_verify(&self, scope: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url("/auth/verify"))
            .query(&[("scope", scope)]);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// A token for a client via Basic; panics unless 200.
    pub async fn token_for(
        &self,
        id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> serde_json::Value {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let resp = self.post_token(Some((id, secret)), &form).await;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn get_jwks(&self) -> serde_json::Value {
        self.http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Runs the ficha binary against this app's database and key directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_cli(&self.db_url, &self.key_dir, args)
    }

    /// Runs the CLI and parses its `--json` output; panics on failure.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "ficha {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ficha {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Creates a client through the CLI; returns (id, secret).
    pub fn create_client(&self, extra: &[&str]) -> (String, String) {
        let mut args = vec!["client", "create"];
        args.extend_from_slice(extra);
        let v = self.cli_json(&args);
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// Runs the real binary with a database and key directory.
pub fn run_cli(db_url: &str, key_dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(args)
        .env("FICHA_DATABASE_URL", db_url)
        .env("FICHA_KEY_DIR", key_dir)
        .env_remove("FICHA_CONFIG")
        .env_remove("FICHA_KEK")
        .output()
        .unwrap()
}

pub fn basic_header(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Polls `check` every 100 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The system time in unix seconds, to start a manual clock from.
pub fn system_now() -> i64 {
    use ficha::oauth::Clock as _;
    SystemClock.now()
}

/// Decodes a JWT's header and payload without verifying.
pub fn jwt_parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    let mut it = token.split('.');
    let dec = |s: &str| -> serde_json::Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    let h = dec(it.next().unwrap());
    let p = dec(it.next().unwrap());
    (h, p)
}

/// Verifies an ES256/RS256 JWT against a JWKS document, as a wallet would.
pub fn verify_with_jwks(
    token: &str,
    jwks: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("kid not in JWKS")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

fn init_test_log() {
    if std::env::var("TEST_LOG").is_ok() {
        std::mem::forget(ficha::telemetry::init(false));
    }
}

/// Runs a test body against SQLite and PostgreSQL: `both_backends!(name, |app| async move { ... })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $opts:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: $crate::helpers::Backend) {
                let Some(app) = $crate::helpers::TestApp::spawn_on(backend, $opts).await else {
                    return;
                };
                let db = app.db_url.clone();
                let body = $body;
                body(app).await;
                $crate::helpers::drop_database(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::helpers::Backend::Postgres).await;
            }
        }
    };
}

/// Sends SIGTERM to a `ficha serve` process and waits (10 s at most) for it
/// to exit; returns its exit status.
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ficha ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One unlabelled counter or gauge from a `/metrics` exposition.
pub fn metric_in(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}
