//! The sandbox seeds (SPEC §6): the example credentials of each provider's
//! documentation, created at sandbox start-up so their documented requests
//! work verbatim, and refused by production because they are public.

use std::collections::BTreeSet;

use secrecy::SecretString;

use crate::keys::Alg;
use crate::oauth::{
    hash_secret, parse_audiences, verify_secret, AuthMethod, Client, ClientId, ClientStore,
    DialectSet, GrantType, ScopeSet, User, UserStore, Username, ANY_AUDIENCE,
};
use crate::store::Store;

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
    /// A public client (RFC 6749 §2.1) for the password and refresh_token
    /// grants: no secret, only its id.
    pub public: bool,
}

/// One seeded resource owner, for the password grant.
#[derive(Debug, Clone, Copy)]
pub struct UserSeed {
    /// The dialect whose documentation uses it.
    pub dialect: &'static str,
    /// The documented username.
    pub username: &'static str,
    /// The documented password, literally.
    pub password: &'static str,
}

/// Every seeded user. Fegora's documented curl sends the placeholder
/// `{contrasenia}` literally, braces included, so that is the password.
pub const USER_SEEDS: &[UserSeed] = &[UserSeed {
    dialect: "fegora",
    username: "25365421",
    password: "{contrasenia}",
}];

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
        public: false,
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
    // Fegora's `apiApp` is a public client for the password grant.
    Seed {
        public: true,
        ..seed("fegora", "apiApp", "", "")
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
        let mut client = Client::new(id, scopes, &secret, now)?;
        client.name = Some(format!("{} sandbox seed", seed.dialect));
        // SPEC §5: each seed speaks its own provider's dialect only.
        client.dialects = DialectSet::from([seed.dialect.to_owned()]);
        client.alg = seed.alg;
        if seed.secret_in_body {
            client.auth_methods =
                BTreeSet::from([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]);
        }
        client.allowed_audiences = parse_audiences(seed.allowed_audiences)?;
        if seed.public {
            client.secrets.clear();
            client.auth_methods = BTreeSet::from([AuthMethod::None]);
            client.grants = BTreeSet::from([GrantType::Password, GrantType::RefreshToken]);
        }
        store.create_client(&client).await?;
        created.push(*seed);
    }
    Ok(created)
}

/// Creates the seeded users that do not exist yet; returns the ones created.
pub async fn ensure_users(store: &dyn UserStore, now: i64) -> anyhow::Result<Vec<UserSeed>> {
    let mut created = Vec::new();
    for seed in USER_SEEDS {
        let name = Username::parse(seed.username).map_err(|e| anyhow::anyhow!("{e}"))?;
        if store.get_user(&name).await?.is_some() {
            continue;
        }
        let password: SecretString = seed.password.to_owned().into();
        store
            .create_user(&User {
                username: name,
                phc: hash_secret(&password)?,
                scopes: None,
                enabled: true,
                created_at: now,
                updated_at: now,
            })
            .await?;
        created.push(*seed);
    }
    Ok(created)
}

/// The seeds whose public credential works against this store: a client
/// with the seed's id and a live secret equal to the seed's secret, the
/// seeded public client (its id is its whole credential), or a seeded user
/// whose password is still the documented one.
pub async fn present(store: &dyn Store, now: i64) -> anyhow::Result<Vec<&'static str>> {
    let mut found = Vec::new();
    for seed in USER_SEEDS {
        let name = Username::parse(seed.username).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(user) = store.get_user(&name).await? else {
            continue;
        };
        let password: SecretString = seed.password.to_owned().into();
        if tokio::task::spawn_blocking(move || verify_secret(&user.phc, &password)).await? {
            found.push(seed.username);
        }
    }
    for seed in SEEDS {
        let id = ClientId::parse(seed.client_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(client) = store.get_client(&id).await? else {
            continue;
        };
        if seed.public {
            if client.auth_methods.contains(&AuthMethod::None) {
                found.push(seed.client_id);
            }
            continue;
        }
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
