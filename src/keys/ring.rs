//! The loaded key ring: the active signer per algorithm, the verifiers of
//! every published key, and the pre-rendered JWKS; swapped atomically when
//! the store's keys change.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

use super::material::PublicJwk;
use super::{Alg, KeyState, KeyStore, KeyVault, SigningKey};

/// Why a token failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a JWS, or its header is unreadable.
    #[error("the token is malformed")]
    Malformed,
    /// The `kid` is not in the ring.
    #[error("the token's key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
}

/// A snapshot of the keys: immutable, replaced as a whole on change.
#[derive(Debug, Default)]
pub struct KeyRing {
    signers: HashMap<Alg, Arc<SigningKey>>,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: String,
    published: Vec<PublicJwk>,
}

impl std::fmt::Debug for KeyRingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRingHandle")
    }
}

impl KeyRing {
    /// Builds the ring from the store: every next, active and retiring key is
    /// published; the active key of each algorithm is loaded for signing.
    /// Temporary files an interrupted key write left behind are removed
    /// (`now`, unix seconds, tells which are stale).
    pub async fn load(store: &dyn KeyStore, vault: &KeyVault, now: i64) -> anyhow::Result<Self> {
        vault.sweep_temp_files(now);
        Self::load_inner(store, Some(vault)).await
    }

    /// Builds a verify-only ring from the public keys in the store.
    pub async fn load_public(store: &dyn KeyStore) -> anyhow::Result<Self> {
        Self::load_inner(store, None).await
    }

    async fn load_inner(store: &dyn KeyStore, vault: Option<&KeyVault>) -> anyhow::Result<Self> {
        let records = store.list_keys().await?;
        let mut ring = KeyRing::default();
        for rec in records.iter().filter(|r| r.state != KeyState::Retired) {
            let jwk: PublicJwk = serde_json::from_str(&rec.public_jwk)?;
            let (alg, key) = decoding_key(rec.alg, &jwk)?;
            ring.verifiers.insert(rec.kid.clone(), (alg, key));
            ring.published.push(jwk);
            if let Some(vault) = vault {
                if rec.state == KeyState::Active && !ring.signers.contains_key(&rec.alg) {
                    ring.signers
                        .insert(rec.alg, Arc::new(vault.signing_key(rec)?));
                }
            }
        }
        ring.jwks = serde_json::to_string(&serde_json::json!({ "keys": ring.published }))?;
        Ok(ring)
    }

    /// Builds a verify-only ring from a JWK Set document, as a verifier on
    /// another machine sees it. Keys of a type ficha does not sign with are
    /// skipped; a document with no usable key is an error.
    pub fn from_jwks(document: &str) -> anyhow::Result<Self> {
        #[derive(serde::Deserialize)]
        struct JwkSet {
            keys: Vec<serde_json::Value>,
        }
        let set: JwkSet =
            serde_json::from_str(document).context("the document is not a JWK Set")?;
        let mut ring = KeyRing::default();
        for value in set.keys {
            let Ok(jwk) = serde_json::from_value::<PublicJwk>(value) else {
                continue;
            };
            let Ok(alg) = jwk.alg.parse::<Alg>() else {
                continue;
            };
            let Ok((alg, key)) = decoding_key(alg, &jwk) else {
                continue;
            };
            ring.verifiers.insert(jwk.kid.clone(), (alg, key));
            ring.published.push(jwk);
        }
        anyhow::ensure!(
            !ring.verifiers.is_empty(),
            "the JWK Set holds no ES256 or RS256 key"
        );
        ring.jwks = serde_json::to_string(&serde_json::json!({ "keys": ring.published }))?;
        Ok(ring)
    }

    /// The active signer for `alg`, if there is one.
    pub fn signer(&self, alg: Alg) -> Option<&Arc<SigningKey>> {
        self.signers.get(&alg)
    }

    /// Whether a key can sign ES256 tokens (the readiness condition).
    pub fn can_sign(&self) -> bool {
        self.signers.contains_key(&Alg::Es256)
    }

    /// The RFC 7517 JWK Set, rendered once per ring.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// The published public keys.
    pub fn published(&self) -> &[PublicJwk] {
        &self.published
    }

    /// Verifies the signature of a compact JWS by its `kid` and returns its
    /// claims. Time-based checks are the caller's, with its own clock.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        self.verify_with_header(token, header)
    }

    /// Like [`KeyRing::verify`], for access tokens only: RFC 9068 §4 has a
    /// resource server refuse a JWT whose `typ` is not `at+jwt` (so an ID
    /// token or another JWT signed with the same key is never accepted as
    /// an access token); such a token is `Malformed`.
    pub fn verify_access_token<T: DeserializeOwned>(&self, token: &str) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let typ = header.typ.as_deref().unwrap_or_default();
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case("at+jwt") {
            return Err(VerifyError::Malformed);
        }
        self.verify_with_header(token, header)
    }

    fn verify_with_header<T: DeserializeOwned>(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
    ) -> Result<T, VerifyError> {
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let (alg, key) = self.verifiers.get(&kid).ok_or(VerifyError::UnknownKey)?;
        if header.alg != *alg {
            return Err(VerifyError::BadSignature);
        }
        let mut validation = Validation::new(*alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::BadSignature,
                _ => VerifyError::Malformed,
            })
    }
}

impl KeyRing {
    /// A ring of one fresh signing key per algorithm in `algs`, held in
    /// memory only: nothing is written, stored or published anywhere else.
    /// For tests, fuzzing and tools that sign and verify within one process.
    pub fn ephemeral(algs: &[Alg]) -> anyhow::Result<Self> {
        let mut ring = KeyRing::default();
        for &alg in algs {
            let key = super::material::generate(alg)?;
            let signer = SigningKey::from_pkcs8(alg, &key.jwk.kid, &key.pkcs8)?;
            ring.verifiers
                .insert(key.jwk.kid.clone(), decoding_key(alg, &key.jwk)?);
            ring.signers.insert(alg, Arc::new(signer));
            ring.published.push(key.jwk);
        }
        ring.jwks = serde_json::to_string(&serde_json::json!({ "keys": ring.published }))?;
        Ok(ring)
    }
}

/// The verifying key of a published JWK.
fn decoding_key(alg: Alg, jwk: &PublicJwk) -> anyhow::Result<(Algorithm, DecodingKey)> {
    Ok(match alg {
        Alg::Es256 => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(
                jwk.x.as_deref().unwrap_or_default(),
                jwk.y.as_deref().unwrap_or_default(),
            )?,
        ),
        Alg::Rs256 => (
            Algorithm::RS256,
            DecodingKey::from_rsa_components(
                jwk.n.as_deref().unwrap_or_default(),
                jwk.e.as_deref().unwrap_or_default(),
            )?,
        ),
    })
}

/// The shared, atomically replaceable current ring.
pub struct KeyRingHandle(ArcSwap<KeyRing>);

impl KeyRingHandle {
    /// A handle holding `ring`.
    pub fn new(ring: KeyRing) -> Self {
        KeyRingHandle(ArcSwap::from_pointee(ring))
    }

    /// The current ring; cheap, lock-free.
    pub fn current(&self) -> arc_swap::Guard<Arc<KeyRing>> {
        self.0.load()
    }

    /// Replaces the ring.
    pub fn replace(&self, ring: KeyRing) {
        self.0.store(Arc::new(ring));
    }
}
