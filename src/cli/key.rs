//! `ficha key ...`: signing keys and their rotation.

use clap::Subcommand;
use serde_json::json;

use super::output::{key_json, print};
use crate::http::DialectKind;
use crate::keys::{self, Alg, KeyState, KeyVault};
use crate::oauth;
use crate::store::Store;

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

/// Runs a `key` command.
pub async fn run(
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
