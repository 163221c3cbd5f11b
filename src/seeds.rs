//! The sandbox seeds (SPEC §6): the example credentials of each provider's
//! documentation, created at sandbox start-up so their documented requests
//! work verbatim, and refused by production because they are public.

use std::collections::BTreeSet;

use secrecy::SecretString;

use crate::cli::new_client;
use crate::keys::Alg;
use crate::oauth::{
    parse_audiences, verify_secret, AuthMethod, ClientId, ClientStore, ScopeSet, ANY_AUDIENCE,
};

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
    /// The algorithm of its tokens.
    pub alg: Alg,
    /// Whether it sends its secret in the body (client_secret_post).
    pub secret_in_body: bool,
    /// Audiences it may ask for by name, space-separated.
    pub allowed_audiences: &'static str,
}

const fn seed(
    dialect: &'static str,
    client_id: &'static str,
    secret: &'static str,
    scopes: &'static str,
) -> Seed {
    Seed {
        dialect,
        client_id,
        secret,
        scopes,
        alg: Alg::Es256,
        secret_in_body: false,
        allowed_audiences: "",
    }
}

/// Every seed.
pub const SEEDS: &[Seed] = &[
    seed(
        "payvalida",
        "payvalida",
        "client_secret",
        "transaction confirmation annulment TuScope",
    ),
    seed("nequi", "nequi-sandbox", "nequi-sandbox-secret", ""),
    // Peinau's own tokens are RS256.
    Seed {
        alg: Alg::Rs256,
        ..seed(
            "peinau",
            "641281901508761220281",
            "B8WKRXMiWHHrMCectt9Rg3ju4Y8GNheEa50gx6365sBV",
            "",
        )
    },
    // Pay-me clients send their secret in the JSON body, and name the
    // audience (their documentation shows several environments).
    Seed {
        secret_in_body: true,
        allowed_audiences: ANY_AUDIENCE,
        ..seed(
            "payme",
            "your_client_id",
            "your_client_secret",
            "create:token post:charges get:charges delete:charges",
        )
    },
];

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
        let mut client = new_client(id, scopes, &secret, now)?;
        client.name = Some(format!("{} sandbox seed", seed.dialect));
        client.alg = seed.alg;
        if seed.secret_in_body {
            client.auth_methods =
                BTreeSet::from([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]);
        }
        client.allowed_audiences = parse_audiences(seed.allowed_audiences)?;
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
