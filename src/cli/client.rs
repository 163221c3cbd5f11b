//! `ficha client ...`: registers and manages clients and their secrets.

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::output::{client_json, client_text, print};
use crate::keys::Alg;
use crate::oauth::{
    self, parse_audiences, parse_list, AuthMethod, Client, ClientId, DialectSet, GrantType,
    ScopeSet, StoreError,
};
use crate::store::Store;

/// Below this, a chosen client secret draws a warning (issue 14).
const MIN_CHOSEN_SECRET_CHARS: usize = 32;

/// Options shared by `client create` and `client update`.
#[derive(Debug, Args, Default)]
pub struct ClientAttrs {
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Token lifetime in seconds (sandbox; production allows at most 1200).
    #[arg(long)]
    pub ttl: Option<u32>,
    /// The `aud` claim of this client's tokens.
    #[arg(long)]
    pub audience: Option<String>,
    /// Audiences the client may ask for by name, space-separated; `*` allows any.
    #[arg(long, value_name = "AUDIENCES")]
    pub allowed_audiences: Option<String>,
    /// Scopes granted when a request names none [default: all allowed].
    #[arg(long)]
    pub default_scopes: Option<String>,
    /// Grant types, comma-separated [default: client_credentials].
    #[arg(long)]
    pub grants: Option<String>,
    /// Authentication methods, comma-separated [default: client_secret_basic].
    #[arg(long)]
    pub auth_methods: Option<String>,
    /// Token signing algorithm: ES256 or RS256 [default: ES256].
    #[arg(long)]
    pub alg: Option<String>,
    /// Dialects whose token paths the client may use, comma-separated:
    /// payvalida, nequi, peinau, payme, fegora [default: payvalida].
    #[arg(long, value_name = "LIST")]
    pub dialects: Option<String>,
}

/// `ficha client ...`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its secret once.
    Create {
        /// Client id (any printable ASCII; one beginning with `-` as
        /// `--id=-x`); random if omitted.
        #[arg(long)]
        id: Option<String>,
        /// Allowed scopes, space-separated.
        #[arg(long)]
        scopes: String,
        /// Use this secret instead of a generated one.
        #[arg(long, env = "FICHA_CLIENT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Allow the client to call /oauth2/introspect.
        #[arg(long)]
        introspect: bool,
        #[command(flatten)]
        attrs: ClientAttrs,
    },
    /// List clients.
    List,
    /// Show one client, with its live secrets' age and last use.
    Show {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Change a client's attributes.
    Update {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Allowed scopes, space-separated.
        #[arg(long)]
        scopes: Option<String>,
        /// Allow (true) or forbid (false) introspection.
        #[arg(long)]
        introspect: Option<bool>,
        #[command(flatten)]
        attrs: ClientAttrs,
    },
    /// Refuse the client from now on.
    Disable {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Accept the client again.
    Enable {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete the client and its secrets.
    Delete {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Issue a new secret; the old one keeps working for the grace period.
    RotateSecret {
        /// Client id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Seconds the old secret keeps working [default: 0].
        #[arg(long, default_value_t = 0)]
        grace: u32,
    },
}

/// Parses a client id given on the command line.
pub fn parse_id(id: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(id).map_err(|e| anyhow::anyhow!("invalid client id: {e}"))
}

/// Parses a space-separated scope list given on the command line.
pub fn parse_scopes(s: &str) -> anyhow::Result<ScopeSet> {
    ScopeSet::parse(s).map_err(|_| anyhow::anyhow!("invalid scope list {s:?}"))
}

fn apply_attrs(c: &mut Client, a: &ClientAttrs) -> anyhow::Result<()> {
    if let Some(n) = &a.name {
        c.name = Some(n.clone());
    }
    if let Some(t) = a.ttl {
        anyhow::ensure!(t > 0, "--ttl must be a positive number of seconds");
        c.ttl = Some(t);
    }
    if let Some(aud) = &a.audience {
        c.audience = Some(aud.clone());
    }
    if let Some(list) = &a.allowed_audiences {
        c.allowed_audiences = parse_audiences(list)?;
    }
    if let Some(d) = &a.default_scopes {
        c.default_scopes = Some(parse_scopes(d)?);
    }
    if let Some(g) = &a.grants {
        c.grants = parse_list::<GrantType>(g)?;
        anyhow::ensure!(
            !c.grants.is_empty(),
            "--grants must name at least one grant type"
        );
    }
    if let Some(m) = &a.auth_methods {
        c.auth_methods = parse_list::<AuthMethod>(m)?;
    }
    if let Some(alg) = &a.alg {
        c.alg = alg.parse::<Alg>()?;
    }
    if let Some(list) = &a.dialects {
        c.dialects = parse_dialects(list)?;
    }
    if let Some(d) = &c.default_scopes {
        anyhow::ensure!(
            d.is_subset(&c.scopes),
            "--default-scopes must be a subset of --scopes"
        );
    }
    Ok(())
}

/// Parses `--dialects`: known dialect names, at least one.
pub fn parse_dialects(list: &str) -> anyhow::Result<DialectSet> {
    let set = list
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            d.parse::<crate::http::DialectKind>()
                .map(|k| k.as_str().to_owned())
        })
        .collect::<anyhow::Result<DialectSet>>()?;
    anyhow::ensure!(!set.is_empty(), "--dialects must name at least one dialect");
    Ok(set)
}

fn not_found(id: &ClientId) -> anyhow::Error {
    anyhow::anyhow!("no client with id {id:?}")
}

async fn load(store: &dyn Store, id: &ClientId) -> anyhow::Result<Client> {
    store.get_client(id).await?.ok_or_else(|| not_found(id))
}

fn store_err(e: StoreError, id: &ClientId) -> anyhow::Error {
    match e {
        StoreError::NotFound => not_found(id),
        StoreError::Conflict => anyhow::anyhow!("a client with id {id:?} already exists"),
        StoreError::Unavailable(e) => e.context("database error"),
    }
}

/// Runs a `client` command.
pub async fn run(
    cmd: &ClientCommand,
    store: &dyn Store,
    now: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            id,
            scopes,
            secret,
            introspect,
            attrs,
        } => {
            let id = match id {
                Some(id) => parse_id(id)?,
                None => ClientId::generate(),
            };
            let secret_given = secret.as_ref();
            let secret: SecretString = match secret {
                Some(s) => {
                    anyhow::ensure!(!s.is_empty(), "--secret must not be empty");
                    // Not refused: the CLI cannot tell whether this
                    // database serves a sandbox, where providers' short
                    // documented secrets are the point (README).
                    if s.chars().count() < MIN_CHOSEN_SECRET_CHARS {
                        eprintln!(
                            "warning: a chosen secret of fewer than {MIN_CHOSEN_SECRET_CHARS} characters can be guessed; in production omit --secret and let ficha generate one (256 bits)"
                        );
                    }
                    s.clone().into()
                }
                None => oauth::generate_secret(),
            };
            let mut client = Client::new(id.clone(), parse_scopes(scopes)?, &secret, now)?;
            client.can_introspect = *introspect;
            apply_attrs(&mut client, attrs)?;
            let public = client.auth_methods.iter().all(|m| *m == AuthMethod::None);
            if public {
                // RFC 6749 §2.1: a public client has no secret at all.
                anyhow::ensure!(
                    secret_given.is_none(),
                    "--secret makes no sense with --auth-methods none"
                );
                client.secrets.clear();
            }
            store
                .create_client(&client)
                .await
                .map_err(|e| store_err(e, &id))?;
            let scopes: Vec<&str> = client.scopes.iter().collect();
            if public {
                print(
                    json_out,
                    json!({"client_id": id.as_ref(), "client_secret": null, "scopes": scopes}),
                    &format!(
                        "client_id: {id}\npublic client (no secret)\nscopes: {}",
                        client.scopes
                    ),
                );
                return Ok(());
            }
            print(
                json_out,
                json!({"client_id": id.as_ref(), "client_secret": secret.expose_secret(), "scopes": scopes}),
                &format!(
                    "client_id: {id}\nclient_secret: {}\nscopes: {}\n(the secret is shown once; only its hash is stored)",
                    secret.expose_secret(),
                    client.scopes
                ),
            );
            Ok(())
        }
        ClientCommand::List => {
            let clients = store.list_clients().await?;
            if json_out {
                let all: Vec<_> = clients.iter().map(|c| client_json(c, now)).collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for c in &clients {
                    println!(
                        "{}\t{}\t{}",
                        c.id,
                        if c.enabled { "enabled" } else { "disabled" },
                        c.scopes
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Show { id } => {
            let c = load(store, &parse_id(id)?).await?;
            print(json_out, client_json(&c, now), &client_text(&c, now));
            Ok(())
        }
        ClientCommand::Update {
            id,
            scopes,
            introspect,
            attrs,
        } => {
            let id = parse_id(id)?;
            let mut c = load(store, &id).await?;
            if let Some(s) = scopes {
                c.scopes = parse_scopes(s)?;
            }
            if let Some(i) = introspect {
                c.can_introspect = *i;
            }
            apply_attrs(&mut c, attrs)?;
            c.updated_at = now;
            store
                .update_client(&c)
                .await
                .map_err(|e| store_err(e, &id))?;
            print(json_out, client_json(&c, now), &client_text(&c, now));
            Ok(())
        }
        ClientCommand::Disable { id } | ClientCommand::Enable { id } => {
            let enabled = matches!(cmd, ClientCommand::Enable { .. });
            let id = parse_id(id)?;
            let mut c = load(store, &id).await?;
            c.enabled = enabled;
            c.updated_at = now;
            store
                .update_client(&c)
                .await
                .map_err(|e| store_err(e, &id))?;
            let word = if enabled { "enabled" } else { "disabled" };
            print(
                json_out,
                json!({"client_id": id.as_ref(), "enabled": enabled}),
                &format!("client {id} {word}"),
            );
            Ok(())
        }
        ClientCommand::Delete { id } => {
            let id = parse_id(id)?;
            store
                .delete_client(&id, now)
                .await
                .map_err(|e| store_err(e, &id))?;
            print(
                json_out,
                json!({"client_id": id.as_ref(), "deleted": true}),
                &format!("client {id} deleted"),
            );
            Ok(())
        }
        ClientCommand::RotateSecret { id, grace } => {
            let id = parse_id(id)?;
            let secret = oauth::generate_secret();
            let phc = oauth::hash_secret(&secret)?;
            store
                .rotate_secret(&id, &phc, now, now + i64::from(*grace))
                .await
                .map_err(|e| store_err(e, &id))?;
            print(
                json_out,
                json!({"client_id": id.as_ref(), "client_secret": secret.expose_secret(), "grace_seconds": grace}),
                &format!(
                    "client_id: {id}\nclient_secret: {}\nthe previous secret works for {grace} more seconds",
                    secret.expose_secret()
                ),
            );
            Ok(())
        }
    }
}
