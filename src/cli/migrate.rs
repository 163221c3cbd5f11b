//! `ficha migrate`: brings the database's schema up to this binary's.

use serde_json::json;

use super::output::print;
use crate::config::Config;

/// Applies the pending migrations.
pub async fn run(config: &Config, json_out: bool) -> anyhow::Result<()> {
    // Opening the store applies the migrations.
    super::open(config).await?;
    print(json_out, json!({"migrated": true}), "database migrated");
    Ok(())
}
