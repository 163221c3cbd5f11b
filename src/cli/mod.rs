//! The command line: clap parses intent into [`Cli`]; [`Cli::config`] turns
//! flags, environment and config file into one [`Config`]; [`run`]
//! dispatches to the command's module, one per command group, each holding
//! its options and its `run`. Exit status 0 on success; errors surface as
//! one line on stderr (main).

mod audit;
mod check;
mod client;
mod completions;
mod key;
mod migrate;
mod output;
mod sandbox;
mod serve;
mod token;
mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

pub use self::audit::AuditCommand;
pub use self::check::ConfigCommand;
pub use self::client::{new_client, parse_dialects, ClientAttrs, ClientCommand};
pub use self::completions::DocsCommand;
pub use self::key::KeyCommand;
pub use self::sandbox::{FaultCommand, SandboxCommand};
pub use self::serve::ServeArgs;
pub use self::token::TokenCommand;
pub use self::user::UserCommand;
use crate::config::{load_kek, Config, Settings};
use crate::http::{DialectPaths, HttpSettings, TrustedProxies};
use crate::keys::KeyVault;
use crate::oauth::{self, AuthSettings, Clock as _, Mode, SystemClock};
use crate::store::{self, PoolSettings, Store};

/// ficha, an OAuth2 token server for payment-wallet integrations.
#[derive(Debug, Parser)]
#[command(name = "ficha", version, about)]
pub struct Cli {
    /// Database URL (sqlite:... or postgres://...).
    // The URL may carry a password: `--help` must not print the variable's value.
    #[arg(
        long = "database",
        global = true,
        env = "FICHA_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// TOML config file; flags and FICHA_* variables override it.
    #[arg(
        long,
        global = true,
        env = "FICHA_CONFIG",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,
    /// Directory of private key files (default keys/).
    #[arg(
        long,
        global = true,
        env = "FICHA_KEY_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub key_dir: Option<PathBuf>,
    /// File holding the base64 key-encryption key; FICHA_KEK may hold it directly.
    #[arg(
        long,
        global = true,
        env = "FICHA_KEK_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub kek_file: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the token server (production unless --sandbox).
    Serve(ServeArgs),
    /// Apply database migrations.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Inspect tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage resource owners (password grant).
    #[command(subcommand)]
    User(UserCommand),
    /// Sandbox test aids (sandbox servers only).
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Read the audit trail of issued tokens.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// `completions SHELL` and the hidden `man DIR`.
    #[command(flatten)]
    Docs(DocsCommand),
}

fn pick<T>(flag: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(file)
}

impl Cli {
    /// Merges flags/environment over the config file over the defaults.
    pub fn config(&self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(p) => Settings::from_file(p)?,
            None => Settings::default(),
        };
        // `config check` takes serve's flags and reads them the same way.
        let serve = match &self.command {
            Command::Serve(s) | Command::Config(ConfigCommand::Check(s)) => Some(s),
            _ => None,
        };
        let sandbox = serve.is_some_and(|s| s.sandbox);
        let mode = if sandbox {
            Mode::Sandbox
        } else {
            Mode::Production
        };
        let mut database_url = pick(self.database.clone(), file.database_url);
        if sandbox && database_url.is_none() {
            database_url = Some(crate::config::SANDBOX_DATABASE_URL.to_owned());
        }
        let bind: SocketAddr = pick(serve.and_then(|s| s.bind.clone()), file.bind)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .context("--bind must be an address like 127.0.0.1:8080")?;
        let kek_env = zeroize::Zeroizing::new(std::env::var("FICHA_KEK").ok());
        // Read once, then gone: no child process, /proc/PID/environ reader
        // or crash report sees it. Only the main task runs at this point,
        // so nothing reads the environment concurrently.
        std::env::remove_var("FICHA_KEK");
        let kek_file = pick(self.kek_file.clone(), file.kek_file);
        let kek = load_kek(kek_env.as_deref(), kek_file.as_deref())?;
        let defaults = AuthSettings::default();
        let pool_defaults = PoolSettings::default();
        // The file's paths first, then the flags', so a flag wins.
        let mut overrides: Vec<(String, String)> =
            file.dialect_paths.unwrap_or_default().into_iter().collect();
        for entry in serve
            .map(|s| s.dialect_paths.as_slice())
            .unwrap_or_default()
        {
            let (name, path) = entry
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--dialect-path takes NAME=PATH, not {entry:?}"))?;
            overrides.push((name.to_owned(), path.to_owned()));
        }
        let trusted_proxies: TrustedProxies = pick(
            serve.and_then(|s| s.trusted_proxies.clone()),
            file.trusted_proxies.map(|l| l.join(",")),
        )
        .unwrap_or_default()
        .parse()?;
        let log_json =
            match pick(serve.and_then(|s| s.log_format.clone()), file.log_format).as_deref() {
                None | Some("pretty") => false,
                Some("json") => true,
                Some(other) => anyhow::bail!("log_format must be pretty or json, not {other:?}"),
            };
        let dialect_paths =
            DialectPaths::with_overrides(overrides.iter().map(|(n, p)| (n.as_str(), p.as_str())))?;
        let http_defaults = HttpSettings::default();
        let http = HttpSettings {
            header_timeout: pick(
                serve.and_then(|s| s.http_header_timeout_secs),
                file.http_header_timeout_secs,
            )
            .map_or(http_defaults.header_timeout, Duration::from_secs),
            idle_timeout: pick(
                serve.and_then(|s| s.http_idle_timeout_secs),
                file.http_idle_timeout_secs,
            )
            .map_or(http_defaults.idle_timeout, Duration::from_secs),
            max_connections: pick(serve.and_then(|s| s.max_connections), file.max_connections)
                .unwrap_or(http_defaults.max_connections),
        };
        http.validate()?;
        Ok(Config {
            mode,
            database_url,
            bind,
            issuer: pick(serve.and_then(|s| s.issuer.clone()), file.issuer),
            audience: pick(serve.and_then(|s| s.audience.clone()), file.audience),
            key_dir: pick(self.key_dir.clone(), file.key_dir)
                .unwrap_or_else(|| PathBuf::from("keys")),
            kek,
            pool: PoolSettings {
                max_connections: pick(
                    serve.and_then(|s| s.pool_max_connections),
                    file.pool_max_connections,
                )
                .unwrap_or(pool_defaults.max_connections)
                .max(1),
                acquire_timeout: pick(
                    serve.and_then(|s| s.pool_acquire_timeout_ms),
                    file.pool_acquire_timeout_ms,
                )
                .map_or(pool_defaults.acquire_timeout, Duration::from_millis),
            },
            sync_interval: Duration::from_millis(
                pick(
                    serve.and_then(|s| s.sync_interval_ms),
                    file.sync_interval_ms,
                )
                .unwrap_or(1000)
                // A poll must land well inside the 5 s staleness bound of
                // the caches and the denylist.
                .clamp(50, 4000),
            ),
            auth: AuthSettings {
                client_cache_size: pick(
                    serve.and_then(|s| s.client_cache_size),
                    file.client_cache_size,
                )
                .unwrap_or(defaults.client_cache_size),
                throttle_client_per_minute: pick(
                    serve.and_then(|s| s.throttle_client_per_minute),
                    file.throttle_client_per_minute,
                )
                .unwrap_or(defaults.throttle_client_per_minute),
                throttle_address_per_minute: pick(
                    serve.and_then(|s| s.throttle_address_per_minute),
                    file.throttle_address_per_minute,
                )
                .unwrap_or(defaults.throttle_address_per_minute),
                hash_concurrency: pick(
                    serve.and_then(|s| s.hash_concurrency),
                    file.hash_concurrency,
                )
                .unwrap_or(defaults.hash_concurrency),
                hash_queue_size: pick(serve.and_then(|s| s.hash_queue_size), file.hash_queue_size)
                    .unwrap_or(defaults.hash_queue_size)
                    .max(1),
                ..defaults
            },
            trusted_proxies,
            refresh_ttl: pick(
                serve.and_then(|s| s.refresh_token_ttl_secs),
                file.refresh_token_ttl_secs,
            )
            .unwrap_or(oauth::DEFAULT_REFRESH_TTL)
            .max(1),
            refresh_max_lifetime: pick(
                serve.and_then(|s| s.refresh_token_max_lifetime_secs),
                file.refresh_token_max_lifetime_secs,
            )
            .unwrap_or(oauth::DEFAULT_REFRESH_MAX_LIFETIME)
            .max(1),
            dialect_paths,
            capture_capacity: pick(
                serve.and_then(|s| s.sandbox_capture_size),
                file.sandbox_capture_size,
            )
            .unwrap_or(crate::sandbox::DEFAULT_CAPTURE_CAPACITY)
            // Each entry may hold a 16 KiB body: keep the log under ~160 MiB.
            .min(10_000),
            http,
            audit_retention_days: pick(
                serve.and_then(|s| s.audit_retention_days),
                file.audit_retention_days,
            )
            .unwrap_or(crate::audit::DEFAULT_RETENTION_DAYS),
            log_json,
            tls: crate::http::tls::TlsPaths::from_parts(
                pick(serve.and_then(|s| s.tls_cert.clone()), file.tls_cert),
                pick(serve.and_then(|s| s.tls_key.clone()), file.tls_key),
            )?,
        })
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let now = SystemClock.now();
    if let Command::Docs(d) = &cli.command {
        // Generated from the clap definition alone: no configuration needed.
        return completions::run(d);
    }
    if let Command::Config(c) = &cli.command {
        // A configuration that does not load is a finding, not a crash.
        return check::run(c, cli.config(), cli.json, now).await;
    }
    let config = cli.config()?;
    let json_out = cli.json;
    let open = || open(&config);
    match &cli.command {
        Command::Serve(_) => serve::run(config).await,
        Command::Config(c) => check::run(c, Ok(config), json_out, now).await,
        Command::Docs(d) => completions::run(d),
        Command::Migrate => migrate::run(&config, json_out).await,
        Command::Client(c) => client::run(c, &*open().await?, now, json_out).await,
        Command::Key(k) => {
            let vault = KeyVault::new(&config.key_dir, config.kek.clone());
            key::run(k, &*open().await?, &vault, now, json_out).await
        }
        Command::User(u) => user::run(u, &*open().await?, now, json_out).await,
        Command::Sandbox(SandboxCommand::Fault(f)) => {
            sandbox::run(f, &*open().await?, now, json_out).await
        }
        Command::Audit(a) => audit::run(a, &*open().await?, json_out).await,
        Command::Token(t) => token::run(t, &config, now).await,
    }
}

/// Opens the configured database, migrating it first.
async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    store::connect(config.database_url_or_default(), &config.pool).await
}
