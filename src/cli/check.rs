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
    let ConfigCommand::Check(_) = cmd;
    let report = crate::check::run(config, now).await;
    let errors = report.errors();
    if json_out {
        let out = serde_json::json!({
            "ok": errors == 0,
            "findings": report.findings,
            "config": report.config,
        });
        println!("{out}");
    } else {
        for f in &report.findings {
            println!("{:<5} {}: {}", f.status, f.check, f.message);
        }
        if let Some(serde_json::Value::Object(map)) = &report.config {
            println!("effective configuration:");
            for (k, v) in map {
                println!("  {k} = {v}");
            }
        }
    }
    anyhow::ensure!(
        errors == 0,
        "configuration check failed: {errors} error(s); serve would not start"
    );
    Ok(())
}
