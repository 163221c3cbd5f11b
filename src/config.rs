//! Configuration in two stages: raw [`Settings`] from a TOML file, overlaid
//! by command-line flags and `FICHA_*` environment variables (clap reads
//! both into a `Settings` of the same keys), then merged and validated by
//! [`Config::load`] into the typed [`Config`] that `serve`, `config check`
//! and every command take. `load` owns every default, including the
//! database a sandbox assumes when none is named.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::audit::DEFAULT_RETENTION_DAYS;
use crate::http::tls::TlsPaths;
use crate::http::{DialectPaths, HttpSettings, TrustedProxies};
use crate::keys::Kek;
use crate::oauth::{AuthSettings, Mode, DEFAULT_REFRESH_MAX_LIFETIME, DEFAULT_REFRESH_TTL};
use crate::sandbox::DEFAULT_CAPTURE_CAPACITY;
use crate::store::PoolSettings;

/// The database a sandbox, and the commands beside it, use when none is
/// named.
const SANDBOX_DATABASE_URL: &str = "sqlite://data/ficha.db";

/// The address `serve` listens on when none is named.
const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The directory of private key files when none is named.
const DEFAULT_KEY_DIR: &str = "keys";

/// Milliseconds between change-log polls when not set.
const DEFAULT_SYNC_INTERVAL_MS: u64 = 1000;

/// Token requests a sandbox keeps at most: each entry may hold a 16 KiB
/// body, so this keeps the capture under ~160 MiB.
const MAX_CAPTURE_CAPACITY: usize = 10_000;

/// What a configuration is loaded for: it decides the database assumed
/// when none is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `serve` and `config check`: a sandbox assumes its own database,
    /// production must be given one.
    Serve {
        /// `--sandbox`.
        sandbox: bool,
    },
    /// A command working on the database: the sandbox's unless one is
    /// named, so commands run beside `serve --sandbox` need no flag.
    Command,
    /// A command that can work without a database (`token verify
    /// --jwks`): none unless one is named.
    Offline,
}

/// Settings as a config file states them; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `database_url`.
    pub database_url: Option<String>,
    /// `bind`.
    pub bind: Option<String>,
    /// `issuer`.
    pub issuer: Option<String>,
    /// `audience`.
    pub audience: Option<String>,
    /// `key_dir`.
    pub key_dir: Option<PathBuf>,
    /// `kek_file`.
    pub kek_file: Option<PathBuf>,
    /// `log_format`.
    pub log_format: Option<String>,
    /// `pool_max_connections`.
    pub pool_max_connections: Option<u32>,
    /// `pool_acquire_timeout_ms`.
    pub pool_acquire_timeout_ms: Option<u64>,
    /// `sync_interval_ms`.
    pub sync_interval_ms: Option<u64>,
    /// `client_cache_size`.
    pub client_cache_size: Option<u64>,
    /// `throttle_client_per_minute`.
    pub throttle_client_per_minute: Option<u32>,
    /// `throttle_address_per_minute`.
    pub throttle_address_per_minute: Option<u32>,
    /// `hash_concurrency`.
    pub hash_concurrency: Option<usize>,
    /// `hash_queue_size`.
    pub hash_queue_size: Option<usize>,
    /// `trusted_proxies`: CIDRs or addresses whose `X-Forwarded-For` is
    /// believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// `refresh_token_ttl_secs`.
    pub refresh_token_ttl_secs: Option<i64>,
    /// `refresh_token_max_lifetime_secs`.
    pub refresh_token_max_lifetime_secs: Option<i64>,
    /// `sandbox_capture_size`.
    pub sandbox_capture_size: Option<usize>,
    /// `http_header_timeout_secs`.
    pub http_header_timeout_secs: Option<u64>,
    /// `http_idle_timeout_secs`.
    pub http_idle_timeout_secs: Option<u64>,
    /// `max_connections`.
    pub max_connections: Option<usize>,
    /// `audit_retention_days`: 0 turns the audit trail off.
    pub audit_retention_days: Option<u32>,
    /// `tls_cert`: the PEM certificate chain served over TLS.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: the PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `[dialect_paths]`: dialect name → path, or `off`.
    #[serde(default)]
    pub dialect_paths: DialectOverrides,
}

/// Dialect mounts as `(name, path or off)`, applied in order so that a
/// later entry wins: the file's, then the flags'.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(from = "BTreeMap<String, String>")]
pub struct DialectOverrides(pub Vec<(String, String)>);

impl From<BTreeMap<String, String>> for DialectOverrides {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map.into_iter().collect())
    }
}

impl Settings {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("Invalid config file {}", path.display()))
    }

    /// `self` (flags and environment) over `lower` (the file): each key
    /// `self` gives wins; dialect mounts apply `lower`'s first, then
    /// `self`'s.
    pub fn over(self, lower: Settings) -> Settings {
        let mut dialect_paths = lower.dialect_paths;
        dialect_paths.0.extend(self.dialect_paths.0);
        Settings {
            database_url: self.database_url.or(lower.database_url),
            bind: self.bind.or(lower.bind),
            issuer: self.issuer.or(lower.issuer),
            audience: self.audience.or(lower.audience),
            key_dir: self.key_dir.or(lower.key_dir),
            kek_file: self.kek_file.or(lower.kek_file),
            log_format: self.log_format.or(lower.log_format),
            pool_max_connections: self.pool_max_connections.or(lower.pool_max_connections),
            pool_acquire_timeout_ms: self
                .pool_acquire_timeout_ms
                .or(lower.pool_acquire_timeout_ms),
            sync_interval_ms: self.sync_interval_ms.or(lower.sync_interval_ms),
            client_cache_size: self.client_cache_size.or(lower.client_cache_size),
            throttle_client_per_minute: self
                .throttle_client_per_minute
                .or(lower.throttle_client_per_minute),
            throttle_address_per_minute: self
                .throttle_address_per_minute
                .or(lower.throttle_address_per_minute),
            hash_concurrency: self.hash_concurrency.or(lower.hash_concurrency),
            hash_queue_size: self.hash_queue_size.or(lower.hash_queue_size),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            refresh_token_ttl_secs: self.refresh_token_ttl_secs.or(lower.refresh_token_ttl_secs),
            refresh_token_max_lifetime_secs: self
                .refresh_token_max_lifetime_secs
                .or(lower.refresh_token_max_lifetime_secs),
            sandbox_capture_size: self.sandbox_capture_size.or(lower.sandbox_capture_size),
            http_header_timeout_secs: self
                .http_header_timeout_secs
                .or(lower.http_header_timeout_secs),
            http_idle_timeout_secs: self.http_idle_timeout_secs.or(lower.http_idle_timeout_secs),
            max_connections: self.max_connections.or(lower.max_connections),
            audit_retention_days: self.audit_retention_days.or(lower.audit_retention_days),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            dialect_paths,
        }
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sandbox or production.
    pub mode: Mode,
    /// The database URL; `None` when none was named and [`Purpose`]
    /// assumes none.
    pub database_url: Option<String>,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// `iss` of tokens; `None` means [`Config::issuer_at`]'s default.
    pub issuer: Option<String>,
    /// `aud` of tokens for clients without one; `None` means the issuer.
    pub audience: Option<String>,
    /// Key directory.
    pub key_dir: PathBuf,
    /// Key-encryption key for private keys kept in the database.
    pub kek: Option<Kek>,
    /// Connection pool.
    pub pool: PoolSettings,
    /// How often the change log is polled.
    pub sync_interval: Duration,
    /// Authenticator tuning.
    pub auth: AuthSettings,
    /// Refresh-token lifetime in seconds.
    pub refresh_ttl: i64,
    /// Absolute lifetime of a refresh-token family in seconds.
    pub refresh_max_lifetime: i64,
    /// Where each provider dialect is mounted.
    pub dialect_paths: DialectPaths,
    /// Proxies whose `X-Forwarded-For` names the client (SPEC §9).
    pub trusted_proxies: TrustedProxies,
    /// Token requests a sandbox keeps for `GET /sandbox/requests`.
    pub capture_capacity: usize,
    /// Header and idle timeouts, and the connection cap.
    pub http: HttpSettings,
    /// Days the audit trail keeps a token's row; 0 keeps no trail.
    pub audit_retention_days: u32,
    /// Log lines as JSON (`log_format = "json"`) rather than pretty text.
    pub log_json: bool,
    /// The certificate and key `serve` speaks TLS with; `None` is plain
    /// HTTP (TLS, if any, ends at a proxy).
    pub tls: Option<TlsPaths>,
}

impl Config {
    /// `https` when `serve` speaks TLS itself, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The issuer when served at `addr`: as configured, or the scheme and
    /// the bound address (`https://127.0.0.1:8443` with TLS on).
    pub fn issuer_at(&self, addr: SocketAddr) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("{}://{addr}", self.scheme()))
    }

    /// Loads the configuration for `purpose`: `flags` (flags and `FICHA_*`
    /// variables) over the config `file` over the defaults. `FICHA_KEK` is
    /// read here and removed from the environment.
    pub fn load(purpose: Purpose, file: Option<&Path>, flags: Settings) -> anyhow::Result<Config> {
        let file = match file {
            Some(p) => Settings::from_file(p)?,
            None => Settings::default(),
        };
        let s = flags.over(file);
        let mode = match purpose {
            Purpose::Serve { sandbox: true } => Mode::Sandbox,
            _ => Mode::Production,
        };
        let database_url = s.database_url.or_else(|| match purpose {
            Purpose::Serve { sandbox: true } | Purpose::Command => {
                Some(SANDBOX_DATABASE_URL.to_owned())
            }
            Purpose::Serve { sandbox: false } | Purpose::Offline => None,
        });
        let bind: SocketAddr = s
            .bind
            .as_deref()
            .unwrap_or(DEFAULT_BIND)
            .parse()
            .context("--bind must be an address like 127.0.0.1:8080")?;
        let kek_env = zeroize::Zeroizing::new(std::env::var("FICHA_KEK").ok());
        // Read once, then gone: no child process, /proc/PID/environ reader
        // or crash report sees it. Only the main task runs at this point,
        // so nothing reads the environment concurrently.
        std::env::remove_var("FICHA_KEK");
        let kek = load_kek(kek_env.as_deref(), s.kek_file.as_deref())?;
        let trusted_proxies: TrustedProxies = s
            .trusted_proxies
            .map(|l| l.join(","))
            .unwrap_or_default()
            .parse()?;
        let log_json = match s.log_format.as_deref() {
            None | Some("pretty") => false,
            Some("json") => true,
            Some(other) => anyhow::bail!("log_format must be pretty or json, not {other:?}"),
        };
        let dialect_paths = DialectPaths::with_overrides(
            s.dialect_paths
                .0
                .iter()
                .map(|(n, p)| (n.as_str(), p.as_str())),
        )?;
        let http_defaults = HttpSettings::default();
        let http = HttpSettings {
            header_timeout: s
                .http_header_timeout_secs
                .map_or(http_defaults.header_timeout, Duration::from_secs),
            idle_timeout: s
                .http_idle_timeout_secs
                .map_or(http_defaults.idle_timeout, Duration::from_secs),
            max_connections: s.max_connections.unwrap_or(http_defaults.max_connections),
        };
        http.validate()?;
        let pool_defaults = PoolSettings::default();
        let auth_defaults = AuthSettings::default();
        Ok(Config {
            mode,
            database_url,
            bind,
            issuer: s.issuer,
            audience: s.audience,
            key_dir: s.key_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_DIR)),
            kek,
            pool: PoolSettings {
                max_connections: s
                    .pool_max_connections
                    .unwrap_or(pool_defaults.max_connections)
                    .max(1),
                acquire_timeout: s
                    .pool_acquire_timeout_ms
                    .map_or(pool_defaults.acquire_timeout, Duration::from_millis),
            },
            sync_interval: Duration::from_millis(
                s.sync_interval_ms
                    .unwrap_or(DEFAULT_SYNC_INTERVAL_MS)
                    // A poll must land well inside the 5 s staleness bound
                    // of the caches and the denylist.
                    .clamp(50, 4000),
            ),
            auth: AuthSettings {
                client_cache_size: s
                    .client_cache_size
                    .unwrap_or(auth_defaults.client_cache_size),
                throttle_client_per_minute: s
                    .throttle_client_per_minute
                    .unwrap_or(auth_defaults.throttle_client_per_minute),
                throttle_address_per_minute: s
                    .throttle_address_per_minute
                    .unwrap_or(auth_defaults.throttle_address_per_minute),
                hash_concurrency: s.hash_concurrency.unwrap_or(auth_defaults.hash_concurrency),
                hash_queue_size: s
                    .hash_queue_size
                    .unwrap_or(auth_defaults.hash_queue_size)
                    .max(1),
                ..auth_defaults
            },
            trusted_proxies,
            refresh_ttl: s
                .refresh_token_ttl_secs
                .unwrap_or(DEFAULT_REFRESH_TTL)
                .max(1),
            refresh_max_lifetime: s
                .refresh_token_max_lifetime_secs
                .unwrap_or(DEFAULT_REFRESH_MAX_LIFETIME)
                .max(1),
            dialect_paths,
            capture_capacity: s
                .sandbox_capture_size
                .unwrap_or(DEFAULT_CAPTURE_CAPACITY)
                .min(MAX_CAPTURE_CAPACITY),
            http,
            audit_retention_days: s.audit_retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            log_json,
            tls: TlsPaths::from_parts(s.tls_cert, s.tls_key)?,
        })
    }

    /// The database to open; only production `serve` and `config check`
    /// can lack one ([`Purpose`]), and they must refuse to start.
    pub fn database(&self) -> anyhow::Result<&str> {
        self.database_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "production mode needs an explicit database: pass --database or set FICHA_DATABASE_URL (or use --sandbox)"
            )
        })
    }
}

/// Reads a key-encryption key from `FICHA_KEK` (base64) or a file.
fn load_kek(env_value: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<Kek>> {
    if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
        return Kek::from_base64(v).map(Some);
    }
    match file {
        Some(path) => {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("Failed to read the key-encryption key {}", path.display())
                })?);
            Kek::from_base64(&text).map(Some)
        }
        None => Ok(None),
    }
}
