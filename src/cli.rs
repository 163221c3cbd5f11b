//! The command line: clap parses intent into [`Cli`]; [`Cli::config`] turns
//! flags, environment and config file into one [`Config`]; `run` executes.
//! Exit status 0 on success; errors surface as one line on stderr (main).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::config::{load_kek, Config, Settings};
use crate::http::{DialectKind, DialectPaths, HttpSettings, TrustedProxies};
use crate::keys::{self, Alg, ClaimsKeys, KeyRing, KeyState, KeyVault, SEALED_CLAIM_PREFIX};
use crate::oauth::{
    self, parse_audiences, parse_list, AuthMethod, AuthSettings, Client, ClientId, Clock,
    GrantType, Mode, ScopeSet, StoreError, StoredSecret, SystemClock, User, Username,
};
use crate::sandbox::{FaultKind, FaultRecord};
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
    Docs(crate::completions::DocsCommand),
}

/// `ficha config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as `serve` would (same flags, variables and
    /// file), check the database, schema, keys, dialect paths and
    /// production's refusals without changing anything; exit 0 when
    /// `serve` would start.
    Check(ServeArgs),
}

/// `ficha audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Issued tokens, newest first: time, jti, client, subject, scope,
    /// dialect, kid, expiry, caller's address.
    List {
        /// Only this client's tokens.
        #[arg(long = "client", value_name = "ID", allow_hyphen_values = true)]
        client_id: Option<String>,
        /// Only tokens issued at or after TIME (RFC 3339 or unix seconds).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only tokens issued before TIME (RFC 3339 or unix seconds).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only the token with this jti.
        #[arg(long, allow_hyphen_values = true)]
        jti: Option<String>,
        /// At most N rows.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: u32,
    },
}

/// `ficha sandbox ...`.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Make a client's token requests misbehave (read by sandbox servers
    /// within a second; production servers never read faults).
    #[command(subcommand)]
    Fault(FaultCommand),
}

/// `ficha sandbox fault ...`.
#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Set a client's fault, replacing any it had.
    Set {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// status:429 | status:500 | status:503 | delay:MS | malformed-json |
        /// expired-token | wrong-kid | bad-signature.
        kind: String,
        /// Apply it to the next N requests only [default: until cleared].
        #[arg(long, value_name = "N")]
        times: Option<u32>,
        /// Apply it to a random fraction R of requests (0 < R <= 1).
        #[arg(long, value_name = "R")]
        ratio: Option<f64>,
        /// Seed the --ratio draw, for a repeatable sequence.
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
    },
    /// List the faults set.
    List,
    /// Clear one client's fault, or every fault.
    Clear {
        /// Client id [default: every client].
        #[arg(allow_hyphen_values = true)]
        client_id: Option<String>,
    },
}

/// `ficha user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a generated password once if none is given.
    Create {
        /// Username (for Fegora: the customer's tax id).
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// Use this password instead of a generated one.
        #[arg(long, env = "FICHA_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Scopes the user may delegate, space-separated [default: no restriction].
        #[arg(long)]
        scopes: Option<String>,
    },
    /// List users.
    List,
    /// Refuse the user from now on and revoke the user's refresh tokens.
    Disable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Accept the user again.
    Enable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Delete the user and the user's refresh tokens.
    Delete {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Set a new password (generated if none is given); revokes refresh tokens.
    SetPassword {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// The new password.
        #[arg(long, env = "FICHA_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

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

/// Options shared by `client create` and `client update`.
#[derive(Debug, Args, Default)]
pub struct ClientAttrs {
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Token lifetime in seconds (sandbox; production allows at most 1200).
    #[arg(long)]
    pub ttl: Option<u32>,
    /// The `aud` claim of this client's tokens.
    #[arg(long)]
    pub audience: Option<String>,
    /// Audiences the client may ask for by name, space-separated; `*` allows any.
    #[arg(long, value_name = "AUDIENCES")]
    pub allowed_audiences: Option<String>,
    /// Scopes granted when a request names none [default: all allowed].
    #[arg(long)]
    pub default_scopes: Option<String>,
    /// Grant types, comma-separated [default: client_credentials].
    #[arg(long)]
    pub grants: Option<String>,
    /// Authentication methods, comma-separated [default: client_secret_basic].
    #[arg(long)]
    pub auth_methods: Option<String>,
    /// Token signing algorithm: ES256 or RS256 [default: ES256].
    #[arg(long)]
    pub alg: Option<String>,
    /// Dialects whose token paths the client may use, comma-separated:
    /// payvalida, nequi, peinau, payme, fegora [default: payvalida].
    #[arg(long, value_name = "LIST")]
    pub dialects: Option<String>,
}

/// `ficha client ...`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its secret once.
    Create {
        /// Client id (any printable ASCII; one beginning with `-` as
        /// `--id=-x`); random if omitted.
        #[arg(long)]
        id: Option<String>,
        /// Allowed scopes, space-separated.
        #[arg(long)]
        scopes: String,
        /// Use this secret instead of a generated one.
        #[arg(long, env = "FICHA_CLIENT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Allow the client to call /oauth2/introspect.
        #[arg(long)]
        introspect: bool,
        #[command(flatten)]
        attrs: ClientAttrs,
    },
    /// List clients.
    List,
    /// Show one client, with its live secrets' age and last use.
    Show {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Change a client's attributes.
    Update {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Allowed scopes, space-separated.
        #[arg(long)]
        scopes: Option<String>,
        /// Allow (true) or forbid (false) introspection.
        #[arg(long)]
        introspect: Option<bool>,
        #[command(flatten)]
        attrs: ClientAttrs,
    },
    /// Refuse the client from now on.
    Disable {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Accept the client again.
    Enable {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete the client and its secrets.
    Delete {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Issue a new secret; the old one keeps working for the grace period.
    RotateSecret {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Seconds the old secret keeps working [default: 0].
        #[arg(long, default_value_t = 0)]
        grace: u32,
    },
}

/// `ficha key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key: active if there is none, otherwise next.
    Generate {
        /// ES256 or RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
    /// List keys and their states.
    List,
    /// Promote next to active once it has been published for the JWKS
    /// max-age (creating a next key and promoting nothing if there is
    /// none); active becomes retiring.
    Rotate {
        /// ES256 or RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Promote at once, even if verifiers may not know the key yet.
        #[arg(long)]
        now: bool,
    },
    /// Remove a retiring key from the JWKS.
    Retire {
        /// Key id.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Retire even though tokens it signed may still be live.
        #[arg(long)]
        force: bool,
    },
}

/// `ficha token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Verify a token (signature, issuer, expiry, revocation, scope) and print
    /// its claims, with any sealed claim (`enc_NAME`) decrypted as NAME when
    /// the claims key is here.
    Verify {
        /// The token.
        token: String,
        /// Require this scope (space-separated: all of them).
        #[arg(long)]
        scope: Option<String>,
        /// Verify with the JWK Set at this http:// URL instead of the local key ring.
        #[arg(long, value_name = "URL")]
        jwks: Option<String>,
        /// The issuer the token must name [default: the config file's
        /// issuer; with --jwks, the URL before /.well-known/jwks.json].
        #[arg(long, env = "FICHA_ISSUER", value_name = "URL", hide_env_values = true)]
        issuer: Option<String>,
    },
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

/// Runs a non-serve command.
pub async fn run(cmd: &Command, config: &Config, json_out: bool) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let open = || store::connect(config.database_url_or_default(), &config.pool);
    match cmd {
        Command::Serve(_) => anyhow::bail!("serve is not a CLI command"),
        Command::Config(ConfigCommand::Check(_)) => {
            crate::check::run(Ok(config.clone()), json_out, now).await
        }
        Command::Docs(d) => crate::completions::run(d),
        Command::Migrate => {
            // `connect` applies the migrations.
            open().await?;
            print(json_out, json!({"migrated": true}), "database migrated");
            Ok(())
        }
        Command::Client(c) => client_command(c, &*open().await?, now, json_out).await,
        Command::Key(k) => {
            let vault = KeyVault::new(&config.key_dir, config.kek.clone());
            key_command(k, &*open().await?, &vault, now, json_out).await
        }
        Command::User(u) => user_command(u, &*open().await?, now, json_out).await,
        Command::Sandbox(SandboxCommand::Fault(f)) => {
            fault_command(f, &*open().await?, now, json_out).await
        }
        Command::Audit(AuditCommand::List {
            client_id,
            since,
            until,
            jti,
            limit,
        }) => {
            let query = crate::audit::AuditQuery {
                client_id: client_id.clone(),
                since: since
                    .as_deref()
                    .map(|t| crate::audit::parse_time("--since", t))
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(|t| crate::audit::parse_time("--until", t))
                    .transpose()?,
                jti: jti.clone(),
                limit: *limit,
            };
            audit_list(&*open().await?, &query, json_out).await
        }
        Command::Token(TokenCommand::Verify {
            token,
            scope,
            jwks,
            issuer,
        }) => {
            let args = VerifyArgs {
                token,
                scope: scope.as_deref(),
                jwks: jwks.as_deref(),
                issuer: issuer.as_deref(),
            };
            token_verify(&args, config, now).await
        }
    }
}

struct VerifyArgs<'a> {
    token: &'a str,
    scope: Option<&'a str>,
    jwks: Option<&'a str>,
    issuer: Option<&'a str>,
}

/// `ficha token verify`: the same checks as `/auth/verify`. With the local
/// key ring the database is at hand, so the denylist is always checked;
/// with `--jwks` it is checked when a database is configured, and a note
/// on stderr says when it could not be.
async fn token_verify(args: &VerifyArgs<'_>, config: &Config, now: i64) -> anyhow::Result<()> {
    let (ring, store, jwks_issuer) = match args.jwks {
        Some(url) => {
            let ring = KeyRing::from_jwks(&fetch_jwks(url).await?)
                .with_context(|| format!("Failed to read the JWK Set at {url}"))?;
            let store = match &config.database_url {
                Some(db) => Some(store::connect(db, &config.pool).await?),
                None => None,
            };
            (
                ring,
                store,
                url.strip_suffix(crate::http::paths::JWKS)
                    .map(str::to_owned),
            )
        }
        None => {
            let store = store::connect(config.database_url_or_default(), &config.pool).await?;
            let ring = KeyRing::load_public(&*store).await?;
            (ring, Some(store), None)
        }
    };
    let issuer = args
        .issuer
        .map(str::to_owned)
        .or_else(|| config.issuer.clone())
        .or(jwks_issuer);
    let verified = oauth::verify_access_token(&ring, args.token, issuer.as_deref(), now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &store {
        Some(store) => anyhow::ensure!(
            !store.is_revoked(&verified.claims.jti).await?,
            "{}",
            oauth::TokenRejection::Revoked
        ),
        None => eprintln!("note: revocation not checked (no --database given)"),
    }
    if let Some(s) = args.scope {
        let required = ScopeSet::parse(s).context("--scope is malformed")?;
        anyhow::ensure!(
            required.is_subset(&verified.scope()),
            "the token does not carry the scope {s}"
        );
    }
    let mut claims = verified.all_claims;
    reveal_sealed_claims(&mut claims, store.as_deref(), config).await;
    println!("{}", serde_json::to_string_pretty(&claims)?);
    Ok(())
}

/// Fetches a JWK Set over plain HTTP (this build carries no TLS stack).
async fn fetch_jwks(url: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        url.starts_with("http://"),
        "--jwks takes an http:// URL (this build has no TLS client); for an https issuer, fetch the JWKS from an instance directly, or verify with the local key ring"
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("Failed to build the HTTP client")?;
    let resp = client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .with_context(|| format!("Failed to fetch the JWK Set at {url}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "Failed to fetch the JWK Set at {url}: HTTP {}",
        resp.status()
    );
    resp.text()
        .await
        .with_context(|| format!("Failed to read the JWK Set at {url}"))
}

/// Claims only the operator can read: a sealed claim `enc_NAME` (the
/// Peinau `identifier`, AES-256-GCM under the server's claims key, SPEC §5)
/// is opened and added as NAME when this machine holds the claims key. The
/// token itself never carries the clear value.
async fn reveal_sealed_claims(
    claims: &mut serde_json::Map<String, serde_json::Value>,
    store: Option<&dyn Store>,
    config: &Config,
) {
    let sealed: Vec<(String, String)> = claims
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix(SEALED_CLAIM_PREFIX)?.to_owned(),
                v.as_str()?.to_owned(),
            ))
        })
        .collect();
    if sealed.is_empty() {
        return;
    }
    let Some(store) = store else {
        eprintln!("note: sealed claims cannot be decrypted without the database");
        return;
    };
    let vault = KeyVault::new(&config.key_dir, config.kek.clone());
    match ClaimsKeys::load(store, &vault).await {
        Ok(keys) => {
            for (name, jwe) in sealed {
                match keys.open(&jwe) {
                    Ok(plain) => {
                        claims.insert(name, plain.into());
                    }
                    Err(e) => eprintln!("note: {name} cannot be decrypted here: {e:#}"),
                }
            }
        }
        Err(e) => eprintln!("note: sealed claims cannot be decrypted here: {e:#}"),
    }
}

/// `ficha audit list`: one tab-separated line per token, or a JSON array.
async fn audit_list(
    store: &dyn Store,
    query: &crate::audit::AuditQuery,
    json_out: bool,
) -> anyhow::Result<()> {
    let rows = store
        .list_audit(query)
        .await
        .context("Failed to read the audit trail")?;
    if json_out {
        println!("{}", serde_json::to_value(&rows)?);
        return Ok(());
    }
    let when = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string())
    };
    for r in &rows {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            when(r.iat),
            r.jti,
            r.client_id,
            r.subject,
            r.scope,
            r.dialect,
            r.kid,
            when(r.exp),
            r.address.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn print(json_out: bool, value: serde_json::Value, text: &str) {
    if json_out {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn client_json(c: &Client, now: i64) -> serde_json::Value {
    let secrets: Vec<_> = c
        .secrets
        .iter()
        .filter(|s| s.is_live(now))
        .map(|s| {
            json!({
                "id": s.id,
                "age_seconds": now - s.created_at,
                "created_at": s.created_at,
                "expires_at": s.expires_at,
                "last_used_at": s.last_used_at,
            })
        })
        .collect();
    json!({
        "client_id": c.id.as_ref(),
        "name": c.name,
        "scopes": c.scopes.iter().collect::<Vec<_>>(),
        "default_scopes": c.default_scopes.as_ref().map(|d| d.iter().collect::<Vec<_>>()),
        "ttl": c.ttl,
        "audience": c.audience,
        "allowed_audiences": c.allowed_audiences.iter().collect::<Vec<_>>(),
        "grants": c.grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "auth_methods": c.auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "dialects": c.dialects.iter().collect::<Vec<_>>(),
        "alg": c.alg.as_str(),
        "introspect": c.can_introspect,
        "enabled": c.enabled,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "secrets": secrets,
    })
}

fn client_text(c: &Client, now: i64) -> String {
    let mut out = format!(
        "client_id: {}\nenabled: {}\nscopes: {}\ngrants: {}\nauth_methods: {}\ndialects: {}\nalg: {}\nttl: {}\naudience: {}\nallowed_audiences: {}\nintrospect: {}",
        c.id,
        c.enabled,
        c.scopes,
        c.grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(","),
        c.auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        c.dialects.iter().map(String::as_str).collect::<Vec<_>>().join(","),
        c.alg,
        c.ttl.map_or("default".to_owned(), |t| t.to_string()),
        c.audience.as_deref().unwrap_or("default"),
        c.allowed_audiences.iter().map(String::as_str).collect::<Vec<_>>().join(" "),
        c.can_introspect,
    );
    for s in c.secrets.iter().filter(|s| s.is_live(now)) {
        out.push_str(&format!(
            "\nsecret #{}: age {}s, last used {}, {}",
            s.id,
            now - s.created_at,
            s.last_used_at
                .map_or("never".to_owned(), |t| format!("{}s ago", now - t)),
            s.expires_at.map_or("no expiry".to_owned(), |e| format!(
                "expires in {}s",
                e - now
            )),
        ));
    }
    out
}

fn parse_id(id: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(id).map_err(|e| anyhow::anyhow!("invalid client id: {e}"))
}

fn parse_scopes(s: &str) -> anyhow::Result<ScopeSet> {
    ScopeSet::parse(s).map_err(|_| anyhow::anyhow!("invalid scope list {s:?}"))
}

fn apply_attrs(c: &mut Client, a: &ClientAttrs) -> anyhow::Result<()> {
    if let Some(n) = &a.name {
        c.name = Some(n.clone());
    }
    if let Some(t) = a.ttl {
        anyhow::ensure!(t > 0, "--ttl must be a positive number of seconds");
        c.ttl = Some(t);
    }
    if let Some(aud) = &a.audience {
        c.audience = Some(aud.clone());
    }
    if let Some(list) = &a.allowed_audiences {
        c.allowed_audiences = parse_audiences(list)?;
    }
    if let Some(d) = &a.default_scopes {
        c.default_scopes = Some(parse_scopes(d)?);
    }
    if let Some(g) = &a.grants {
        c.grants = parse_list::<GrantType>(g)?;
        anyhow::ensure!(
            !c.grants.is_empty(),
            "--grants must name at least one grant type"
        );
    }
    if let Some(m) = &a.auth_methods {
        c.auth_methods = parse_list::<AuthMethod>(m)?;
    }
    if let Some(alg) = &a.alg {
        c.alg = alg.parse::<Alg>()?;
    }
    if let Some(list) = &a.dialects {
        c.dialects = parse_dialects(list)?;
    }
    if let Some(d) = &c.default_scopes {
        anyhow::ensure!(
            d.is_subset(&c.scopes),
            "--default-scopes must be a subset of --scopes"
        );
    }
    Ok(())
}

/// Parses `--dialects`: known dialect names, at least one.
pub fn parse_dialects(list: &str) -> anyhow::Result<BTreeSet<String>> {
    let set = list
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            d.parse::<crate::http::DialectKind>()
                .map(|k| k.as_str().to_owned())
        })
        .collect::<anyhow::Result<BTreeSet<String>>>()?;
    anyhow::ensure!(!set.is_empty(), "--dialects must name at least one dialect");
    Ok(set)
}

fn not_found(id: &ClientId) -> anyhow::Error {
    anyhow::anyhow!("no client with id {id:?}")
}

async fn load(store: &dyn Store, id: &ClientId) -> anyhow::Result<Client> {
    store.get_client(id).await?.ok_or_else(|| not_found(id))
}

fn store_err(e: StoreError, id: &ClientId) -> anyhow::Error {
    match e {
        StoreError::NotFound => not_found(id),
        StoreError::Conflict => anyhow::anyhow!("a client with id {id:?} already exists"),
        StoreError::Unavailable(e) => e.context("database error"),
    }
}

/// Builds a new client record with a hashed secret.
pub fn new_client(
    id: ClientId,
    scopes: ScopeSet,
    secret: &SecretString,
    now: i64,
) -> anyhow::Result<Client> {
    Ok(Client {
        id,
        name: None,
        scopes,
        default_scopes: None,
        ttl: None,
        audience: None,
        allowed_audiences: BTreeSet::new(),
        grants: BTreeSet::from([GrantType::ClientCredentials]),
        auth_methods: BTreeSet::from([AuthMethod::ClientSecretBasic]),
        dialects: BTreeSet::from([oauth::DEFAULT_DIALECT.to_owned()]),
        alg: Alg::Es256,
        can_introspect: false,
        enabled: true,
        created_at: now,
        updated_at: now,
        secrets: vec![StoredSecret {
            id: 0,
            phc: oauth::hash_secret(secret)?,
            created_at: now,
            expires_at: None,
            last_used_at: None,
        }],
    })
}

async fn client_command(
    cmd: &ClientCommand,
    store: &dyn Store,
    now: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            id,
            scopes,
            secret,
            introspect,
            attrs,
        } => {
            let id = match id {
                Some(id) => parse_id(id)?,
                None => ClientId::generate(),
            };
            let secret_given = secret.as_ref();
            let secret: SecretString = match secret {
                Some(s) => {
                    anyhow::ensure!(!s.is_empty(), "--secret must not be empty");
                    // Not refused: the CLI cannot tell whether this
                    // database serves a sandbox, where providers' short
                    // documented secrets are the point (README).
                    if s.chars().count() < MIN_CHOSEN_SECRET_CHARS {
                        eprintln!(
                            "warning: a chosen secret of fewer than {MIN_CHOSEN_SECRET_CHARS} characters can be guessed; in production omit --secret and let ficha generate one (256 bits)"
                        );
                    }
                    s.clone().into()
                }
                None => oauth::generate_secret(),
            };
            let mut client = new_client(id.clone(), parse_scopes(scopes)?, &secret, now)?;
            client.can_introspect = *introspect;
            apply_attrs(&mut client, attrs)?;
            let public = client.auth_methods.iter().all(|m| *m == AuthMethod::None);
            if public {
                // RFC 6749 §2.1: a public client has no secret at all.
                anyhow::ensure!(
                    secret_given.is_none(),
                    "--secret makes no sense with --auth-methods none"
                );
                client.secrets.clear();
            }
            store
                .create_client(&client)
                .await
                .map_err(|e| store_err(e, &id))?;
            let scopes: Vec<&str> = client.scopes.iter().collect();
            if public {
                print(
                    json_out,
                    json!({"client_id": id.as_ref(), "client_secret": null, "scopes": scopes}),
                    &format!(
                        "client_id: {id}\npublic client (no secret)\nscopes: {}",
                        client.scopes
                    ),
                );
                return Ok(());
            }
            print(
                json_out,
                json!({"client_id": id.as_ref(), "client_secret": secret.expose_secret(), "scopes": scopes}),
                &format!(
                    "client_id: {id}\nclient_secret: {}\nscopes: {}\n(the secret is shown once; only its hash is stored)",
                    secret.expose_secret(),
                    client.scopes
                ),
            );
            Ok(())
        }
        ClientCommand::List => {
            let clients = store.list_clients().await?;
            if json_out {
                let all: Vec<_> = clients.iter().map(|c| client_json(c, now)).collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for c in &clients {
                    println!(
                        "{}\t{}\t{}",
                        c.id,
                        if c.enabled { "enabled" } else { "disabled" },
                        c.scopes
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Show { id } => {
            let c = load(store, &parse_id(id)?).await?;
            print(json_out, client_json(&c, now), &client_text(&c, now));
            Ok(())
        }
        ClientCommand::Update {
            id,
            scopes,
            introspect,
            attrs,
        } => {
            let id = parse_id(id)?;
            let mut c = load(store, &id).await?;
            if let Some(s) = scopes {
                c.scopes = parse_scopes(s)?;
            }
            if let Some(i) = introspect {
                c.can_introspect = *i;
            }
            apply_attrs(&mut c, attrs)?;
            c.updated_at = now;
            store
                .update_client(&c)
                .await
                .map_err(|e| store_err(e, &id))?;
            print(json_out, client_json(&c, now), &client_text(&c, now));
            Ok(())
        }
        ClientCommand::Disable { id } | ClientCommand::Enable { id } => {
            let enabled = matches!(cmd, ClientCommand::Enable { .. });
            let id = parse_id(id)?;
            let mut c = load(store, &id).await?;
            c.enabled = enabled;
            c.updated_at = now;
            store
                .update_client(&c)
                .await
                .map_err(|e| store_err(e, &id))?;
            let word = if enabled { "enabled" } else { "disabled" };
            print(
                json_out,
                json!({"client_id": id.as_ref(), "enabled": enabled}),
                &format!("client {id} {word}"),
            );
            Ok(())
        }
        ClientCommand::Delete { id } => {
            let id = parse_id(id)?;
            store
                .delete_client(&id, now)
                .await
                .map_err(|e| store_err(e, &id))?;
            print(
                json_out,
                json!({"client_id": id.as_ref(), "deleted": true}),
                &format!("client {id} deleted"),
            );
            Ok(())
        }
        ClientCommand::RotateSecret { id, grace } => {
            let id = parse_id(id)?;
            let secret = oauth::generate_secret();
            let phc = oauth::hash_secret(&secret)?;
            store
                .rotate_secret(&id, &phc, now, now + i64::from(*grace))
                .await
                .map_err(|e| store_err(e, &id))?;
            print(
                json_out,
                json!({"client_id": id.as_ref(), "client_secret": secret.expose_secret(), "grace_seconds": grace}),
                &format!(
                    "client_id: {id}\nclient_secret: {}\nthe previous secret works for {grace} more seconds",
                    secret.expose_secret()
                ),
            );
            Ok(())
        }
    }
}

fn key_json(k: &keys::KeyRecord) -> serde_json::Value {
    json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": k.state.as_str(),
        "created_at": k.created_at,
        "activated_at": k.activated_at,
        "retiring_at": k.retiring_at,
        "storage": if k.sealed_private_key.is_some() { "database" } else { "file" },
    })
}

/// The longest lifetime a live token can have, for `key retire`: any
/// client's own, or any dialect's documented one.
async fn max_ttl(store: &dyn Store) -> anyhow::Result<i64> {
    let clients = store.list_clients().await?;
    Ok(clients
        .iter()
        .filter_map(|c| c.ttl)
        .chain(
            DialectKind::ALL
                .into_iter()
                .filter_map(DialectKind::documented_lifetime),
        )
        .map(i64::from)
        .chain([i64::from(oauth::DEFAULT_TTL)])
        .max()
        .unwrap_or(i64::from(oauth::DEFAULT_TTL)))
}

async fn key_command(
    cmd: &KeyCommand,
    store: &dyn Store,
    vault: &KeyVault,
    now: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Generate { alg } => {
            let alg: Alg = alg.parse()?;
            let has_active = store
                .list_keys()
                .await?
                .iter()
                .any(|k| k.alg == alg && k.state == KeyState::Active);
            let state = if has_active {
                KeyState::Next
            } else {
                KeyState::Active
            };
            let rec = vault.generate(store, alg, state, now).await?;
            print(
                json_out,
                key_json(&rec),
                &format!("{}\t{}\t{}", rec.kid, rec.alg, rec.state.as_str()),
            );
            Ok(())
        }
        KeyCommand::List => {
            let keys = store.list_keys().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(keys.iter().map(key_json).collect())
                );
            } else {
                for k in &keys {
                    println!("{}\t{}\t{}", k.kid, k.alg, k.state.as_str());
                }
            }
            Ok(())
        }
        KeyCommand::Rotate { alg, now: at_once } => {
            match keys::rotate(store, vault, alg.parse()?, now, *at_once).await? {
                keys::Rotation::Promoted { active, retiring } => print(
                    json_out,
                    json!({"promoted": true, "active": active, "retiring": retiring}),
                    &format!(
                        "active: {active}\nretiring: {}",
                        retiring.as_deref().unwrap_or("none")
                    ),
                ),
                keys::Rotation::Pending { next, ready_at } => {
                    let wait = (ready_at - now).max(0);
                    print(
                        json_out,
                        json!({"promoted": false, "next": next, "ready_at": ready_at, "retry_in_secs": wait}),
                        &format!(
                            "next key {next} is published but not yet known to every verifier; \
                             nothing promoted: run `ficha key rotate` again in {wait} s \
                             (at unix time {ready_at}), or with --now to promote it at once"
                        ),
                    );
                }
            }
            Ok(())
        }
        KeyCommand::Retire { kid, force } => {
            let max_ttl = max_ttl(store).await?;
            keys::retire(store, kid, *force, max_ttl, now).await?;
            print(
                json_out,
                json!({"kid": kid, "state": "retired"}),
                &format!("key {kid} retired"),
            );
            Ok(())
        }
    }
}

fn parse_username(s: &str) -> anyhow::Result<Username> {
    Username::parse(s).map_err(|e| anyhow::anyhow!("invalid username: {e}"))
}

async fn load_user(store: &dyn Store, name: &Username) -> anyhow::Result<User> {
    store
        .get_user(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
}

fn user_err(e: StoreError, name: &Username) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow::anyhow!("no user named {name:?}"),
        StoreError::Conflict => anyhow::anyhow!("a user named {name:?} already exists"),
        StoreError::Unavailable(e) => e.context("database error"),
    }
}

/// Below this, a chosen client secret draws a warning (issue 14).
const MIN_CHOSEN_SECRET_CHARS: usize = 32;

fn password_or_generated(p: Option<&String>) -> anyhow::Result<(SecretString, bool)> {
    match p {
        Some(p) => {
            anyhow::ensure!(!p.is_empty(), "--password must not be empty");
            Ok((p.clone().into(), false))
        }
        None => Ok((oauth::generate_secret(), true)),
    }
}

async fn user_command(
    cmd: &UserCommand,
    store: &dyn Store,
    now: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            password,
            scopes,
        } => {
            let name = parse_username(username)?;
            let (password, generated) = password_or_generated(password.as_ref())?;
            let user = User {
                username: name.clone(),
                phc: oauth::hash_secret(&password)?,
                scopes: scopes.as_deref().map(parse_scopes).transpose()?,
                enabled: true,
                created_at: now,
                updated_at: now,
            };
            store
                .create_user(&user)
                .await
                .map_err(|e| user_err(e, &name))?;
            let shown = generated.then(|| password.expose_secret().to_owned());
            print(
                json_out,
                json!({"username": name.as_ref(), "password": shown}),
                &match &shown {
                    Some(p) => format!(
                        "user {name} created\npassword: {p}\n(shown once; only its hash is stored)"
                    ),
                    None => format!("user {name} created"),
                },
            );
            Ok(())
        }
        UserCommand::List => {
            let users = store.list_users().await?;
            if json_out {
                let all: Vec<_> = users
                    .iter()
                    .map(|u| {
                        json!({
                            "username": u.username.as_ref(),
                            "enabled": u.enabled,
                            "scopes": u.scopes.as_ref().map(|s| s.iter().collect::<Vec<_>>()),
                            "created_at": u.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for u in &users {
                    println!(
                        "{}\t{}",
                        u.username,
                        if u.enabled { "enabled" } else { "disabled" }
                    );
                }
            }
            Ok(())
        }
        UserCommand::Disable { username } | UserCommand::Enable { username } => {
            let enabled = matches!(cmd, UserCommand::Enable { .. });
            let name = parse_username(username)?;
            let mut user = load_user(store, &name).await?;
            user.enabled = enabled;
            user.updated_at = now;
            store
                .update_user(&user)
                .await
                .map_err(|e| user_err(e, &name))?;
            let word = if enabled { "enabled" } else { "disabled" };
            print(
                json_out,
                json!({"username": name.as_ref(), "enabled": enabled}),
                &format!("user {name} {word}"),
            );
            Ok(())
        }
        UserCommand::Delete { username } => {
            let name = parse_username(username)?;
            store
                .delete_user(&name)
                .await
                .map_err(|e| user_err(e, &name))?;
            print(
                json_out,
                json!({"username": name.as_ref(), "deleted": true}),
                &format!("user {name} deleted"),
            );
            Ok(())
        }
        UserCommand::SetPassword { username, password } => {
            let name = parse_username(username)?;
            let mut user = load_user(store, &name).await?;
            let (password, generated) = password_or_generated(password.as_ref())?;
            user.phc = oauth::hash_secret(&password)?;
            user.updated_at = now;
            store
                .update_user(&user)
                .await
                .map_err(|e| user_err(e, &name))?;
            let shown = generated.then(|| password.expose_secret().to_owned());
            print(
                json_out,
                json!({"username": name.as_ref(), "password": shown}),
                &match &shown {
                    Some(p) => format!("password of {name} changed\npassword: {p}"),
                    None => format!("password of {name} changed"),
                },
            );
            Ok(())
        }
    }
}

fn fault_text(f: &FaultRecord) -> String {
    let mut out = format!("{} {}", f.client_id, f.kind);
    if let Some(n) = f.times {
        out.push_str(&format!(" --times {n}"));
    }
    if let Some(r) = f.ratio {
        out.push_str(&format!(" --ratio {r}"));
    }
    if let Some(s) = f.seed {
        out.push_str(&format!(" --seed {s}"));
    }
    out
}

/// `ficha sandbox fault ...`: works on the database's fault table, which
/// sandbox servers reload within one change-log poll.
async fn fault_command(
    cmd: &FaultCommand,
    store: &dyn Store,
    now: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        FaultCommand::Set {
            client_id,
            kind,
            times,
            ratio,
            seed,
        } => {
            let kind: FaultKind = kind.parse()?;
            let fault = FaultRecord::new(parse_id(client_id)?, kind, *times, *ratio, *seed, now)?;
            store
                .set_fault(&fault)
                .await
                .context("Failed to set the fault")?;
            print(
                json_out,
                serde_json::to_value(&fault)?,
                &format!("fault set: {}", fault_text(&fault)),
            );
        }
        FaultCommand::List => {
            let faults = store
                .list_faults()
                .await
                .context("Failed to list the faults")?;
            if json_out {
                println!("{}", serde_json::to_value(&faults)?);
            } else if faults.is_empty() {
                println!("no faults set");
            } else {
                for f in &faults {
                    println!("{}", fault_text(f));
                }
            }
        }
        FaultCommand::Clear { client_id } => {
            let id = client_id.as_deref().map(parse_id).transpose()?;
            let cleared = store
                .clear_faults(id.as_ref(), now)
                .await
                .context("Failed to clear the faults")?;
            print(
                json_out,
                json!({"cleared": cleared}),
                &format!("{cleared} fault(s) cleared"),
            );
        }
    }
    Ok(())
}
