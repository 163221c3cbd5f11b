//! `ficha serve`: its options (also taken by `config check`) and the run
//! that builds the application and serves until a signal.

use std::path::PathBuf;

use clap::Args;

use crate::config::{Config, DialectOverrides, Settings};
use crate::startup::Application;

/// `ficha serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Sandbox mode: default SQLite database, generated key, seeded clients.
    #[arg(long, env = "FICHA_SANDBOX", hide_env_values = true)]
    pub sandbox: bool,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FICHA_BIND", value_name = "ADDR", hide_env_values = true)]
    pub bind: Option<String>,
    /// Issuer URL [default: http:// (https:// with TLS) + the bound address].
    #[arg(long, env = "FICHA_ISSUER", value_name = "URL", hide_env_values = true)]
    pub issuer: Option<String>,
    /// Default `aud` of tokens [default: the issuer].
    #[arg(long, env = "FICHA_AUDIENCE", hide_env_values = true)]
    pub audience: Option<String>,
    /// Log format: pretty or json [default: pretty].
    #[arg(long, env = "FICHA_LOG_FORMAT", hide_env_values = true)]
    pub log_format: Option<String>,
    /// Maximum database connections [default: 10].
    #[arg(long, env = "FICHA_POOL_MAX_CONNECTIONS", hide_env_values = true)]
    pub pool_max_connections: Option<u32>,
    /// Milliseconds a query waits for a connection [default: 3000].
    #[arg(long, env = "FICHA_POOL_ACQUIRE_TIMEOUT_MS", hide_env_values = true)]
    pub pool_acquire_timeout_ms: Option<u64>,
    /// Milliseconds between change-log polls [default: 1000].
    #[arg(long, env = "FICHA_SYNC_INTERVAL_MS", hide_env_values = true)]
    pub sync_interval_ms: Option<u64>,
    /// Clients cached in memory [default: 32768].
    #[arg(long, env = "FICHA_CLIENT_CACHE_SIZE", hide_env_values = true)]
    pub client_cache_size: Option<u64>,
    /// Failed secret verifications per minute per (client id, address); 0 disables [default: 10].
    #[arg(long, env = "FICHA_THROTTLE_CLIENT_PER_MINUTE", hide_env_values = true)]
    pub throttle_client_per_minute: Option<u32>,
    /// Failed secret verifications per minute per address; 0 disables [default: 120].
    #[arg(
        long,
        env = "FICHA_THROTTLE_ADDRESS_PER_MINUTE",
        hide_env_values = true
    )]
    pub throttle_address_per_minute: Option<u32>,
    /// Concurrent argon2 verifications [default: number of cores].
    #[arg(long, env = "FICHA_HASH_CONCURRENCY", hide_env_values = true)]
    pub hash_concurrency: Option<usize>,
    /// Verifications that may wait for a hashing thread; beyond, 503 [default: 256].
    #[arg(long, env = "FICHA_HASH_QUEUE_SIZE", hide_env_values = true)]
    pub hash_queue_size: Option<usize>,
    /// Proxies whose X-Forwarded-For names the client: CIDRs or addresses,
    /// comma-separated [default: none].
    #[arg(
        long,
        env = "FICHA_TRUSTED_PROXIES",
        value_name = "CIDR,...",
        hide_env_values = true
    )]
    pub trusted_proxies: Option<String>,
    /// Refresh-token lifetime in seconds [default: 1209600, 14 days].
    #[arg(long, env = "FICHA_REFRESH_TOKEN_TTL_SECS", hide_env_values = true)]
    pub refresh_token_ttl_secs: Option<i64>,
    /// Absolute lifetime of a refresh-token family in seconds: rotation
    /// never extends it [default: 7776000, 90 days].
    #[arg(
        long,
        env = "FICHA_REFRESH_TOKEN_MAX_LIFETIME_SECS",
        hide_env_values = true
    )]
    pub refresh_token_max_lifetime_secs: Option<i64>,
    /// Mount a dialect elsewhere, or turn it off: NAME=PATH or NAME=off
    /// (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "dialect-path",
        env = "FICHA_DIALECT_PATHS",
        hide_env_values = true,
        value_name = "NAME=PATH",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub dialect_paths: Vec<String>,
    /// Token requests a sandbox keeps for GET /sandbox/requests [default: 500].
    #[arg(long, env = "FICHA_SANDBOX_CAPTURE_SIZE", hide_env_values = true)]
    pub sandbox_capture_size: Option<usize>,
    /// Seconds a connection has to send a request's headers [default: 10].
    #[arg(long, env = "FICHA_HTTP_HEADER_TIMEOUT_SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Seconds an idle keep-alive connection is kept [default: 60].
    #[arg(long, env = "FICHA_HTTP_IDLE_TIMEOUT_SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Connections served at once; more wait in the backlog [default: 4096].
    #[arg(long, env = "FICHA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Days the audit trail keeps each issued token's row; 0 keeps no trail [default: 90].
    #[arg(long, env = "FICHA_AUDIT_RETENTION_DAYS", hide_env_values = true)]
    pub audit_retention_days: Option<u32>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key; SIGHUP
    /// reloads both).
    #[arg(long, env = "FICHA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, SEC1 or PKCS#1) of --tls-cert.
    #[arg(long, env = "FICHA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// The flags (and the variables clap read for them) as config keys,
    /// for [`Config::load`] to lay over the file.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let dialect_paths = self
            .dialect_paths
            .iter()
            .map(|entry| {
                let (name, path) = entry.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("--dialect-path takes NAME=PATH, not {entry:?}")
                })?;
                Ok((name.to_owned(), path.to_owned()))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Settings {
            bind: self.bind.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            log_format: self.log_format.clone(),
            pool_max_connections: self.pool_max_connections,
            pool_acquire_timeout_ms: self.pool_acquire_timeout_ms,
            sync_interval_ms: self.sync_interval_ms,
            client_cache_size: self.client_cache_size,
            throttle_client_per_minute: self.throttle_client_per_minute,
            throttle_address_per_minute: self.throttle_address_per_minute,
            hash_concurrency: self.hash_concurrency,
            hash_queue_size: self.hash_queue_size,
            // One comma-separated entry: the file's list is joined the same way.
            trusted_proxies: self.trusted_proxies.clone().map(|p| vec![p]),
            refresh_token_ttl_secs: self.refresh_token_ttl_secs,
            refresh_token_max_lifetime_secs: self.refresh_token_max_lifetime_secs,
            sandbox_capture_size: self.sandbox_capture_size,
            http_header_timeout_secs: self.http_header_timeout_secs,
            http_idle_timeout_secs: self.http_idle_timeout_secs,
            max_connections: self.max_connections,
            audit_retention_days: self.audit_retention_days,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            dialect_paths: DialectOverrides(dialect_paths),
            ..Settings::default()
        })
    }
}

/// Serves with `config` until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let _log_guard = crate::telemetry::init(config.log_json);
    let app = Application::build(config).await?;
    for notice in app.notices() {
        println!("{notice}");
    }
    println!("ficha listening on {}", app.base_url());
    app.run_until_stopped().await
}
