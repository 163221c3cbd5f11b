//! `ficha token verify`: checks a token against the local key ring or a
//! remote JWK Set, which this module fetches.

use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Config;
use crate::keys::{ClaimsKeys, KeyRing, KeyVault, SEALED_CLAIM_PREFIX};
use crate::oauth::{self, ScopeSet};
use crate::store::{self, Store};

/// `ficha token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Verify a token (signature, issuer, expiry, revocation, scope) and print
    /// its claims, with any sealed claim (`enc_NAME`) decrypted as NAME when
    /// the claims key is here.
    Verify {
        /// The token.
        token: String,
        /// Require this scope (space-separated: all of them).
        #[arg(long)]
        scope: Option<String>,
        /// Verify with the JWK Set at this http:// URL instead of the local key ring.
        #[arg(long, value_name = "URL")]
        jwks: Option<String>,
        /// The issuer the token must name [default: the config file's
        /// issuer; with --jwks, the URL before /.well-known/jwks.json].
        #[arg(long, env = "FICHA_ISSUER", value_name = "URL", hide_env_values = true)]
        issuer: Option<String>,
    },
}

impl TokenCommand {
    /// Whether the command can run without a database (`--jwks`), so none
    /// is assumed.
    pub fn offline(&self) -> bool {
        match self {
            TokenCommand::Verify { jwks, .. } => jwks.is_some(),
        }
    }
}

/// Runs a `token` command.
pub async fn run(cmd: &TokenCommand, config: &Config, now: i64) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Verify {
            token,
            scope,
            jwks,
            issuer,
        } => {
            let args = VerifyArgs {
                token,
                scope: scope.as_deref(),
                jwks: jwks.as_deref(),
                issuer: issuer.as_deref(),
            };
            verify(&args, config, now).await
        }
    }
}

struct VerifyArgs<'a> {
    token: &'a str,
    scope: Option<&'a str>,
    jwks: Option<&'a str>,
    issuer: Option<&'a str>,
}

/// `ficha token verify`: the same checks as `/auth/verify`. With the local
/// key ring the database is at hand, so the denylist is always checked;
/// with `--jwks` it is checked when a database is configured, and a note
/// on stderr says when it could not be.
async fn verify(args: &VerifyArgs<'_>, config: &Config, now: i64) -> anyhow::Result<()> {
    let (ring, store, jwks_issuer) = match args.jwks {
        Some(url) => {
            let ring = KeyRing::from_jwks(&fetch_jwks(url).await?)
                .with_context(|| format!("Failed to read the JWK Set at {url}"))?;
            let store = match &config.database_url {
                Some(db) => Some(store::connect(db, &config.pool).await?),
                None => None,
            };
            (
                ring,
                store,
                url.strip_suffix(crate::http::paths::JWKS)
                    .map(str::to_owned),
            )
        }
        None => {
            let store = store::connect(config.database()?, &config.pool).await?;
            let ring = KeyRing::load_public(&*store).await?;
            (ring, Some(store), None)
        }
    };
    let issuer = args
        .issuer
        .map(str::to_owned)
        .or_else(|| config.issuer.clone())
        .or(jwks_issuer);
    let verified = oauth::verify_access_token(&ring, args.token, issuer.as_deref(), now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &store {
        Some(store) => anyhow::ensure!(
            !store.is_revoked(&verified.claims.jti).await?,
            "{}",
            oauth::TokenRejection::Revoked
        ),
        None => eprintln!("note: revocation not checked (no --database given)"),
    }
    if let Some(s) = args.scope {
        let required = ScopeSet::parse(s).context("--scope is malformed")?;
        anyhow::ensure!(
            required.is_subset(&verified.scope()),
            "the token does not carry the scope {s}"
        );
    }
    let mut claims = verified.all_claims;
    reveal_sealed_claims(&mut claims, store.as_deref(), config).await;
    println!("{}", serde_json::to_string_pretty(&claims)?);
    Ok(())
}

/// Fetches a JWK Set over plain HTTP (this build carries no TLS stack).
async fn fetch_jwks(url: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        url.starts_with("http://"),
        "--jwks takes an http:// URL (this build has no TLS client); for an https issuer, fetch the JWKS from an instance directly, or verify with the local key ring"
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("Failed to build the HTTP client")?;
    let resp = client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .with_context(|| format!("Failed to fetch the JWK Set at {url}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "Failed to fetch the JWK Set at {url}: HTTP {}",
        resp.status()
    );
    resp.text()
        .await
        .with_context(|| format!("Failed to read the JWK Set at {url}"))
}

/// Claims only the operator can read: a sealed claim `enc_NAME` (the
/// Peinau `identifier`, AES-256-GCM under the server's claims key, SPEC §5)
/// is opened and added as NAME when this machine holds the claims key. The
/// token itself never carries the clear value.
async fn reveal_sealed_claims(
    claims: &mut serde_json::Map<String, serde_json::Value>,
    store: Option<&dyn Store>,
    config: &Config,
) {
    let sealed: Vec<(String, String)> = claims
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix(SEALED_CLAIM_PREFIX)?.to_owned(),
                v.as_str()?.to_owned(),
            ))
        })
        .collect();
    if sealed.is_empty() {
        return;
    }
    let Some(store) = store else {
        eprintln!("note: sealed claims cannot be decrypted without the database");
        return;
    };
    let vault = KeyVault::new(&config.key_dir, config.kek.clone());
    match ClaimsKeys::load(store, &vault).await {
        Ok(keys) => {
            for (name, jwe) in sealed {
                match keys.open(&jwe) {
                    Ok(plain) => {
                        claims.insert(name, plain.into());
                    }
                    Err(e) => eprintln!("note: {name} cannot be decrypted here: {e:#}"),
                }
            }
        }
        Err(e) => eprintln!("note: sealed claims cannot be decrypted here: {e:#}"),
    }
}
