//! The claims key: AES-256-GCM encryption of values a token must carry but
//! no reader of the token may see (such as a client's `identifier`). A
//! sealed value is a compact JWE (RFC 7516 §7.1) with `alg: dir` and
//! `enc: A256GCM` (RFC 7518 §4.5, §5.3), so any JOSE library given the key
//! can open it.
//!
//! The key is 32 random bytes. With a key-encryption key it is sealed in the
//! database, so every instance sharing the database shares it (two instances
//! that create one at the same moment keep both; the oldest seals, any
//! opens); without one it is the mode-0600 file `claims.key` in the key
//! directory.
//!
//! A sealed value travels in a private claim named `enc_` + its name
//! ([`SEALED_CLAIM_PREFIX`]), so `ficha token verify` can open every one.

use std::fmt;

use anyhow::Context as _;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::files::{write_private_file, Finish};
use super::kek::CLAIMS_KEY_AAD;
use super::{KeyStore, KeyVault};

/// The prefix of a private claim that holds a sealed value.
pub const SEALED_CLAIM_PREFIX: &str = "enc_";

/// The file holding the claims key when there is no key-encryption key.
const FILE_NAME: &str = "claims.key";

/// A claims key as the database keeps it: sealed under the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedClaimsKey {
    /// A domain-separated hash of the key; names it in JWE headers.
    pub kid: String,
    /// AES-256-GCM sealed key bytes (nonce ‖ ciphertext ‖ tag).
    pub sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// The loaded claims keys: the first seals, every one opens.
pub struct ClaimsKeys {
    keys: Vec<(String, LessSafeKey)>,
}

impl fmt::Debug for ClaimsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ClaimsKeys").field("kids", &kids).finish()
    }
}

/// A key id that names the key without revealing it: a domain-separated
/// SHA-256 of the key, truncated.
fn kid_of(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"ficha claims key id\0");
    h.update(key);
    let mut kid = B64.encode(h.finalize());
    kid.truncate(16);
    kid
}

fn aead_key(bytes: &[u8]) -> anyhow::Result<(String, LessSafeKey)> {
    anyhow::ensure!(bytes.len() == 32, "a claims key must be 32 bytes");
    let unbound =
        UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow::anyhow!("bad claims key"))?;
    Ok((kid_of(bytes), LessSafeKey::new(unbound)))
}

fn random_key() -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(k.as_mut())
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(k)
}

impl ClaimsKeys {
    /// No key: nothing can be sealed or opened.
    pub fn none() -> Self {
        ClaimsKeys { keys: Vec::new() }
    }

    /// A fresh random key held in memory only, never stored: values it
    /// seals open in this process alone. For tests, fuzzing and tools.
    pub fn ephemeral() -> anyhow::Result<Self> {
        let key = random_key()?;
        Ok(ClaimsKeys {
            keys: vec![aead_key(key.as_ref())?],
        })
    }

    /// Loads the claims keys that exist, creating none.
    pub async fn load(store: &dyn KeyStore, vault: &KeyVault) -> anyhow::Result<Self> {
        Self::load_inner(store, vault, None).await
    }

    /// Loads the claims keys, creating one at `now` if there is none; the
    /// second value says whether one was created.
    pub async fn ensure(
        store: &dyn KeyStore,
        vault: &KeyVault,
        now: i64,
    ) -> anyhow::Result<(Self, bool)> {
        let existing = Self::load_inner(store, vault, None).await?;
        if existing.can_seal() {
            return Ok((existing, false));
        }
        Ok((Self::load_inner(store, vault, Some(now)).await?, true))
    }

    async fn load_inner(
        store: &dyn KeyStore,
        vault: &KeyVault,
        create_at: Option<i64>,
    ) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        match &vault.kek {
            Some(kek) => {
                if let Some(now) = create_at {
                    let key = random_key()?;
                    store
                        .insert_claims_key(&SealedClaimsKey {
                            kid: kid_of(key.as_ref()),
                            sealed: kek.seal_for(CLAIMS_KEY_AAD, key.as_ref())?,
                            created_at: now,
                        })
                        .await?;
                }
                for rec in store.list_claims_keys().await? {
                    let bytes = kek
                        .open_for(CLAIMS_KEY_AAD, &rec.sealed)
                        .with_context(|| format!("Failed to open the claims key {}", rec.kid))?;
                    keys.push(aead_key(&bytes)?);
                }
            }
            None => {
                let path = vault.dir.join(FILE_NAME);
                if create_at.is_some() && !path.exists() {
                    let key = random_key()?;
                    let text = Zeroizing::new(STANDARD.encode(key.as_ref()));
                    // Another process may have won the race; its file is
                    // as good, and no-clobber keeps it whole for both.
                    if let Err(e) = write_private_file(&path, text.as_bytes(), Finish::NoClobber) {
                        if !path.exists() {
                            return Err(e);
                        }
                    }
                }
                if path.exists() {
                    let text =
                        Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
                            format!("Failed to read the claims key {}", path.display())
                        })?);
                    let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
                        anyhow::anyhow!("the claims key {} is not base64", path.display())
                    })?);
                    keys.push(aead_key(&bytes)?);
                }
            }
        }
        Ok(ClaimsKeys { keys })
    }

    /// Whether a key is loaded to seal with.
    pub fn can_seal(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Seals `plain` as a compact JWE under the sealing key.
    pub fn seal(&self, plain: &str) -> anyhow::Result<String> {
        let (kid, key) = self
            .keys
            .first()
            .ok_or_else(|| anyhow::anyhow!("no claims key is loaded"))?;
        let header = serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": kid});
        let header = B64.encode(serde_json::to_vec(&header)?);
        let mut iv = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut iv)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut buf = plain.as_bytes().to_vec();
        // RFC 7516 §5.1 step 14: the AAD is the encoded protected header.
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(header.as_bytes()),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("Failed to seal a claim"))?;
        // RFC 7516 §7.1; `dir` has an empty encrypted key (RFC 7518 §4.5).
        Ok(format!(
            "{header}..{}.{}.{}",
            B64.encode(iv),
            B64.encode(&buf),
            B64.encode(tag.as_ref())
        ))
    }

    /// Opens a compact JWE made by [`ClaimsKeys::seal`] with any loaded key.
    pub fn open(&self, jwe: &str) -> anyhow::Result<String> {
        let malformed = || anyhow::anyhow!("not a ficha sealed claim");
        let parts: Vec<&str> = jwe.split('.').collect();
        let [header_b64, encrypted_key, iv, ciphertext, tag] = parts[..] else {
            return Err(malformed());
        };
        anyhow::ensure!(encrypted_key.is_empty(), "not a ficha sealed claim");
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(header_b64).map_err(|_| malformed())?)
                .map_err(|_| malformed())?;
        anyhow::ensure!(
            header["alg"] == "dir" && header["enc"] == "A256GCM",
            "not a ficha sealed claim"
        );
        let kid = header["kid"].as_str().ok_or_else(malformed)?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .ok_or_else(|| anyhow::anyhow!("the claims key {kid} is not available here"))?;
        let iv = B64.decode(iv).map_err(|_| malformed())?;
        let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| malformed())?;
        let mut buf = Zeroizing::new(B64.decode(ciphertext).map_err(|_| malformed())?);
        buf.extend_from_slice(&B64.decode(tag).map_err(|_| malformed())?);
        let plain = key
            .open_in_place(nonce, Aad::from(header_b64.as_bytes()), buf.as_mut_slice())
            .map_err(|_| anyhow::anyhow!("the sealed claim does not open with key {kid}"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| malformed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ClaimsKeys {
        ClaimsKeys::ephemeral().unwrap()
    }

    #[test]
    fn a_sealed_claim_opens_with_its_key_only_and_hides_the_plaintext() {
        let k = keys();
        let jwe = k.seal("123456789").unwrap();
        assert_eq!(jwe.split('.').count(), 5);
        assert!(!jwe.contains("123456789"));
        assert_eq!(k.open(&jwe).unwrap(), "123456789");
        // Two seals of one value differ (fresh IV), so equal values do not
        // show as equal ciphertexts.
        assert_ne!(k.seal("123456789").unwrap(), jwe);
        assert!(keys().open(&jwe).is_err());
    }

    #[test]
    fn a_tampered_sealed_claim_does_not_open() {
        let k = keys();
        let jwe = k.seal("123456789").unwrap();
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let mut ct = B64.decode(&parts[3]).unwrap();
        ct[0] ^= 1;
        parts[3] = B64.encode(ct);
        assert!(k.open(&parts.join(".")).is_err());
        assert!(k.open("a.b.c").is_err());
        assert!(ClaimsKeys::none().seal("x").is_err());
    }
}
