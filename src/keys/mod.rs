//! The signing key ring: key generation, the next → active → retiring
//! lifecycle, private keys at rest (PEM files, mode 0600, or AES-256-GCM in
//! the database under an operator key), the JWKS, and token signing and
//! verification; and the claims key that seals values a token carries for
//! the operator only. This is the only module that touches private key
//! material; it knows nothing of HTTP or SQL (the store implements
//! [`KeyStore`]).

mod claims;
mod files;
mod kek;
mod material;
mod ring;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context as _;

use crate::store_error::StoreError;

pub use claims::{ClaimsKeys, SealedClaimsKey, SEALED_CLAIM_PREFIX};
pub use kek::Kek;
pub use material::{PublicJwk, SigningKey};
pub use ring::{KeyRing, KeyRingHandle, VerifyError};

/// A JWS algorithm ficha signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    /// ECDSA P-256 SHA-256, the default.
    Es256,
    /// RSASSA-PKCS1-v1_5 SHA-256 (RFC 9068 §4 requires RS256 support).
    Rs256,
}

impl Alg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }
}

impl FromStr for Alg {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(Alg::Es256),
            "RS256" => Ok(Alg::Rs256),
            _ => anyhow::bail!("algorithm must be ES256 or RS256"),
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key is in its life (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing, so verifiers learn it first.
    Next,
    /// Signs new tokens.
    Active,
    /// Published, not signing, until every token it signed has expired.
    Retiring,
    /// Gone from the JWKS; kept as a record only.
    Retired,
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

impl FromStr for KeyState {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "next" => Ok(KeyState::Next),
            "active" => Ok(KeyState::Active),
            "retiring" => Ok(KeyState::Retiring),
            "retired" => Ok(KeyState::Retired),
            _ => anyhow::bail!("unknown key state {s}"),
        }
    }
}

/// A key as the store keeps it: public half, state, and, when the ring lives
/// in the database, the private key sealed under the operator's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Algorithm.
    pub alg: Alg,
    /// Lifecycle state.
    pub state: KeyState,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// AES-256-GCM sealed PKCS#8 (nonce ‖ ciphertext), or `None` when the
    /// private key is a PEM file in the key directory.
    pub sealed_private_key: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
    /// When the key became active.
    pub activated_at: Option<i64>,
    /// When the key stopped signing.
    pub retiring_at: Option<i64>,
}

/// Storage for key records, implemented by `store/`.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Every key record, newest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Inserts `new` (if given) and applies the state changes `(kid, new
    /// state, at)`, all in one transaction: a rotation that creates its key
    /// is never seen (or left by a crash) half done. `NotFound` (and
    /// nothing applied) when a kid is not stored.
    async fn apply_key_changes(
        &self,
        new: Option<&KeyRecord>,
        changes: &[(String, KeyState, i64)],
    ) -> Result<(), StoreError>;
    /// Inserts a new key.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.apply_key_changes(Some(key), &[]).await
    }
    /// Applies state changes atomically: `(kid, new state, at)`.
    async fn set_key_states(&self, changes: &[(String, KeyState, i64)]) -> Result<(), StoreError> {
        self.apply_key_changes(None, changes).await
    }
    /// Every claims key, oldest first.
    async fn list_claims_keys(&self) -> Result<Vec<SealedClaimsKey>, StoreError>;
    /// Stores a claims key; a kid already stored is left as it is.
    async fn insert_claims_key(&self, key: &SealedClaimsKey) -> Result<(), StoreError>;
}

/// Where private keys live and how they are protected.
#[derive(Clone)]
pub struct KeyVault {
    dir: PathBuf,
    kek: Option<Kek>,
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVault")
            .field("dir", &self.dir)
            .field("kek", &self.kek.is_some())
            .finish()
    }
}

impl KeyVault {
    /// Private keys as PEM files in `dir`, or sealed in the store under `kek`.
    pub fn new(dir: impl Into<PathBuf>, kek: Option<Kek>) -> Self {
        KeyVault {
            dir: dir.into(),
            kek,
        }
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pem_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    /// Creates a key in `state`: a PEM file (mode 0600) in the key directory,
    /// or, with a key-encryption key, a sealed blob in the record.
    pub async fn generate(
        &self,
        store: &dyn KeyStore,
        alg: Alg,
        state: KeyState,
        now: i64,
    ) -> anyhow::Result<KeyRecord> {
        let record = self.create(alg, state, now)?;
        store.insert_key(&record).await?;
        Ok(record)
    }

    /// Makes a key and its private half at rest, without recording it: the
    /// PEM file is whole and on disk before any record can name it, so a
    /// crash leaves at worst a file no record names, never a record without
    /// its key.
    fn create(&self, alg: Alg, state: KeyState, now: i64) -> anyhow::Result<KeyRecord> {
        let key = material::generate(alg)?;
        let sealed = match &self.kek {
            Some(kek) => Some(kek.seal(&key.pkcs8)?),
            None => {
                let pem = material::to_pem(&key.pkcs8)?;
                files::write_private_file(
                    &self.pem_path(&key.jwk.kid),
                    pem.as_bytes(),
                    files::Finish::Replace,
                )?;
                None
            }
        };
        Ok(KeyRecord {
            kid: key.jwk.kid.clone(),
            alg,
            state,
            public_jwk: serde_json::to_string(&key.jwk)?,
            sealed_private_key: sealed,
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retiring_at: None,
        })
    }

    /// Removes the temporary files that writers killed mid-write left in the
    /// key directory (they are never read: no final name ends like them);
    /// `now` (unix seconds) tells the stale ones.
    pub fn sweep_temp_files(&self, now: i64) {
        let removed = files::sweep_temp_files(&self.dir, now);
        if !removed.is_empty() {
            tracing::info!(
                count = removed.len(),
                dir = %self.dir.display(),
                "removed temporary key files left by an interrupted write"
            );
        }
    }

    /// Loads and parses the private key of `record`.
    pub fn signing_key(&self, record: &KeyRecord) -> anyhow::Result<SigningKey> {
        let pkcs8 = match (&record.sealed_private_key, &self.kek) {
            (Some(sealed), Some(kek)) => kek.open(sealed)?,
            (Some(_), None) => anyhow::bail!(
                "key {} is sealed in the database; set the key-encryption key (FICHA_KEK or --kek-file)",
                record.kid
            ),
            (None, _) => {
                let path = self.pem_path(&record.kid);
                let pem = std::fs::read_to_string(&path)
                    .with_context(|| format!("Failed to read the private key {}", path.display()))?;
                material::from_pem(&pem)?
            }
        };
        let jwk = material::public_jwk(record.alg, &pkcs8)?;
        anyhow::ensure!(
            jwk.kid == record.kid,
            "private key does not match key {}",
            record.kid
        );
        SigningKey::from_pkcs8(record.alg, &record.kid, &pkcs8)
    }
}

/// How long verifiers may cache the JWKS (its `Cache-Control: max-age`),
/// and so how long a `next` key must have been published before `key
/// rotate` lets it sign (SPEC §7): one value decides both, so a verifier
/// that cached the JWKS has always learnt a key before its first token.
pub const JWKS_MAX_AGE_SECS: i64 = 300;

/// The outcome of a rotation.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// `next` became active.
    Promoted {
        /// The key that now signs.
        active: String,
        /// The key that stopped signing, if there was one.
        retiring: Option<String>,
    },
    /// Nothing promoted: the `next` key (created now if there was none) has
    /// not been published for [`JWKS_MAX_AGE_SECS`] yet.
    Pending {
        /// The published key waiting to sign.
        next: String,
        /// Unix seconds from which `key rotate` promotes it.
        ready_at: i64,
    },
}

/// SPEC §7: promotes the `next` key of `alg` to `active` and moves the old
/// active key to `retiring`, once that `next` has been published for at
/// least [`JWKS_MAX_AGE_SECS`]. With no `next`, creates one and promotes
/// nothing. `now_anyway` (`--now`) promotes at once, as does the absence of
/// an active key (nothing can sign otherwise).
pub async fn rotate(
    store: &dyn KeyStore,
    vault: &KeyVault,
    alg: Alg,
    now: i64,
    now_anyway: bool,
) -> anyhow::Result<Rotation> {
    let keys = store.list_keys().await?;
    let old: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| k.alg == alg && k.state == KeyState::Active)
        .collect();
    let (next, created) = match keys
        .iter()
        .find(|k| k.alg == alg && k.state == KeyState::Next)
    {
        Some(k) => (k.clone(), None),
        None => {
            let k = vault.create(alg, KeyState::Next, now)?;
            (k.clone(), Some(k))
        }
    };
    // A next key must parse before it may sign.
    vault.signing_key(&next)?;
    let ready_at = next.created_at + JWKS_MAX_AGE_SECS;
    if now < ready_at && !now_anyway && !old.is_empty() {
        if created.is_some() {
            store.apply_key_changes(created.as_ref(), &[]).await?;
        }
        return Ok(Rotation::Pending {
            next: next.kid,
            ready_at,
        });
    }
    let mut changes = vec![(next.kid.clone(), KeyState::Active, now)];
    changes.extend(old.iter().map(|k| (k.kid.clone(), KeyState::Retiring, now)));
    // The new key and every state change in one transaction.
    store.apply_key_changes(created.as_ref(), &changes).await?;
    Ok(Rotation::Promoted {
        active: next.kid,
        retiring: old.first().map(|k| k.kid.clone()),
    })
}

/// Removes a retiring key from the JWKS. Refused while tokens it signed may
/// still be live (`retiring_at + max_ttl` in the future) unless `force`.
pub async fn retire(
    store: &dyn KeyStore,
    kid: &str,
    force: bool,
    max_ttl: i64,
    now: i64,
) -> anyhow::Result<()> {
    let keys = store.list_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| anyhow::anyhow!("no key with kid {kid}"))?;
    match key.state {
        KeyState::Retiring => {}
        KeyState::Active => anyhow::bail!("key {kid} is active; rotate first"),
        KeyState::Next => {}
        KeyState::Retired => anyhow::bail!("key {kid} is already retired"),
    }
    if key.state == KeyState::Retiring && !force {
        let safe_at = key.retiring_at.unwrap_or(now) + max_ttl;
        anyhow::ensure!(
            now >= safe_at,
            "tokens signed by {kid} may be live for {} more seconds; wait or pass --force",
            safe_at - now
        );
    }
    store
        .set_key_states(&[(kid.to_owned(), KeyState::Retired, now)])
        .await?;
    Ok(())
}
