//! `ficha audit list`: reads the audit trail of issued tokens.

use anyhow::Context as _;
use clap::Subcommand;

use super::output::audit_text;
use crate::audit::{parse_time, AuditQuery};
use crate::store::Store;

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

/// Runs an `audit` command.
pub async fn run(cmd: &AuditCommand, store: &dyn Store, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List {
            client_id,
            since,
            until,
            jti,
            limit,
        } => {
            let query = AuditQuery {
                client_id: client_id.clone(),
                since: since
                    .as_deref()
                    .map(|t| parse_time("--since", t))
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(|t| parse_time("--until", t))
                    .transpose()?,
                jti: jti.clone(),
                limit: *limit,
            };
            list(store, &query, json_out).await
        }
    }
}

/// `ficha audit list`: one tab-separated line per token, or a JSON array.
async fn list(store: &dyn Store, query: &AuditQuery, json_out: bool) -> anyhow::Result<()> {
    let rows = store
        .list_audit(query)
        .await
        .context("Failed to read the audit trail")?;
    if json_out {
        println!("{}", serde_json::to_value(&rows)?);
        return Ok(());
    }
    for r in &rows {
        println!("{}", audit_text(r));
    }
    Ok(())
}
