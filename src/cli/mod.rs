//! The command line: clap parses intent into [`Cli`]; [`Cli::config`] hands
//! its flags (and the `FICHA_*` variables clap read) to [`Config::load`];
//! [`run`]
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

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

pub use self::audit::AuditCommand;
pub use self::check::ConfigCommand;
pub use self::client::{parse_dialects, ClientAttrs, ClientCommand};
pub use self::completions::DocsCommand;
pub use self::key::KeyCommand;
pub use self::sandbox::{FaultCommand, SandboxCommand};
pub use self::serve::ServeArgs;
pub use self::token::TokenCommand;
pub use self::user::UserCommand;
use crate::config::{Config, Purpose, Settings};
use crate::keys::KeyVault;
use crate::oauth::{Clock as _, SystemClock};
use crate::store::{self, Store};

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

impl Cli {
    /// The configuration this command line asks for: its flags and
    /// `FICHA_*` variables over its config file, by [`Config::load`].
    pub fn config(&self) -> anyhow::Result<Config> {
        // `config check` takes serve's flags and reads them the same way.
        let (purpose, flags) = match &self.command {
            Command::Serve(s) | Command::Config(ConfigCommand::Check(s)) => {
                (Purpose::Serve { sandbox: s.sandbox }, s.settings()?)
            }
            Command::Token(t) if t.offline() => (Purpose::Offline, Settings::default()),
            _ => (Purpose::Command, Settings::default()),
        };
        let flags = Settings {
            database_url: self.database.clone(),
            key_dir: self.key_dir.clone(),
            kek_file: self.kek_file.clone(),
            ..flags
        };
        Config::load(purpose, self.config.as_deref(), flags)
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
    store::connect(config.database()?, &config.pool).await
}
