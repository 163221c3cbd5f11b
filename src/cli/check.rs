//! `ficha config check`: takes serve's options; the checks themselves live
//! in [`crate::check`], which the library owns so they need no command line.

use clap::Subcommand;

use super::ServeArgs;
use crate::config::Config;

/// `ficha config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as `serve` would (same flags, variables and
    /// file), check the database, schema, keys, dialect paths and
    /// production's refusals without changing anything; exit 0 when
    /// `serve` would start.
    Check(ServeArgs),
}

/// Runs `config check` on the loaded configuration, or reports why it
/// could not be loaded.
pub async fn run(
    cmd: &ConfigCommand,
    config: anyhow::Result<Config>,
    json_out: bool,
    now: i64,
) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check(_) => crate::check::run(config, json_out, now).await,
    }
}
