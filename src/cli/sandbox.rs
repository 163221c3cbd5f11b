//! `ficha sandbox fault ...`: sets, lists and clears the fault table that
//! sandbox servers reload within one change-log poll.

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::client::parse_id;
use super::output::{fault_text, print};
use crate::sandbox::{FaultKind, FaultRecord};
use crate::store::Store;

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

/// `ficha sandbox fault ...`: works on the database's fault table, which
/// sandbox servers reload within one change-log poll.
pub async fn run(
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
