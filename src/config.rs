//! Configuration in two stages: raw [`Settings`] from a TOML file, overlaid
//! by command-line flags and `FICHA_*` environment variables (clap reads
//! both), then validated into a typed [`Config`] that every command takes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::http::tls::TlsPaths;
use crate::http::{DialectPaths, HttpSettings, TrustedProxies};
use crate::keys::Kek;
use crate::oauth::{AuthSettings, Mode};
use crate::store::PoolSettings;

/// The database a sandbox uses when none is given.
pub const SANDBOX_DATABASE_URL: &str = "sqlite://data/ficha.db";

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
    pub dialect_paths: Option<BTreeMap<String, String>>,
}

impl Settings {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("Invalid config file {}", path.display()))
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sandbox or production.
    pub mode: Mode,
    /// The database URL; `None` only when production was given none.
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

    /// The database URL, or the sandbox default for CLI commands.
    pub fn database_url_or_default(&self) -> &str {
        self.database_url.as_deref().unwrap_or(SANDBOX_DATABASE_URL)
    }
}

/// Reads a key-encryption key from `FICHA_KEK` (base64) or a file.
pub fn load_kek(env_value: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<Kek>> {
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
