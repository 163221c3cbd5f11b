//! The sandbox seeds (SPEC §6): the example credentials of each provider's
//! documentation, created at sandbox start-up so their documented requests
//! work verbatim, and refused by production because they are public.

use secrecy::SecretString;

use crate::cli::new_client;
use crate::oauth::{verify_secret, ClientId, ClientStore, ScopeSet};

/// One seeded client.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    /// The provider dialect it serves.
    pub dialect: &'static str,
    /// The documented client id.
    pub client_id: &'static str,
    /// The documented secret.
    pub secret: &'static str,
    /// Allowed scopes, space-separated.
    pub scopes: &'static str,
}

/// Every seed.
pub const SEEDS: &[Seed] = &[Seed {
    dialect: "payvalida",
    client_id: "payvalida",
    secret: "client_secret",
    scopes: "transaction confirmation annulment TuScope",
}];

/// Creates the seeds that do not exist yet; returns the ones created.
pub async fn ensure(store: &dyn ClientStore, now: i64) -> anyhow::Result<Vec<Seed>> {
    let mut created = Vec::new();
    for seed in SEEDS {
        let id = ClientId::parse(seed.client_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        if store.get_client(&id).await?.is_some() {
            continue;
        }
        let scopes = ScopeSet::parse(seed.scopes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let secret: SecretString = seed.secret.to_owned().into();
        let client = new_client(id, scopes, &secret, now)?;
        store.create_client(&client).await?;
        created.push(*seed);
    }
    Ok(created)
}

/// The seeds whose public credential works against this store: a client
/// with the seed's id and a live secret equal to the seed's secret.
pub async fn present(store: &dyn ClientStore, now: i64) -> anyhow::Result<Vec<&'static str>> {
    let mut found = Vec::new();
    for seed in SEEDS {
        let id = ClientId::parse(seed.client_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(client) = store.get_client(&id).await? else {
            continue;
        };
        let secret: SecretString = seed.secret.to_owned().into();
        let live: Vec<String> = client
            .secrets
            .iter()
            .filter(|s| s.is_live(now))
            .map(|s| s.phc.clone())
            .collect();
        let matches =
            tokio::task::spawn_blocking(move || live.iter().any(|phc| verify_secret(phc, &secret)))
                .await?;
        if matches {
            found.push(seed.client_id);
        }
    }
    Ok(found)
}
