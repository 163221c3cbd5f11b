//! The key-encryption key: AES-256-GCM sealing of private keys stored in the
//! database, so an instance needs only the database URL and this key.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

/// Binds every sealed blob to its purpose, so a blob cannot be replayed as
/// another kind of ciphertext sealed under the same key.
const AAD: &[u8] = b"ficha private key v1";
/// The purpose of a sealed claims key (see `keys::claims`).
pub(super) const CLAIMS_KEY_AAD: &[u8] = b"ficha claims key v1";

/// A 256-bit key-encryption key. `Debug` never shows it.
#[derive(Clone)]
pub struct Kek(Zeroizing<[u8; 32]>);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// Parses the base64 text of 32 random bytes (as `ficha kek generate`
    /// prints and as the file or FICHA_KEK holds).
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| anyhow::anyhow!("the key-encryption key is not base64"))?,
        );
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!("the key-encryption key must be 32 bytes (base64 of 32 random bytes)")
        })?;
        Ok(Kek(Zeroizing::new(arr)))
    }

    /// A fresh random key.
    pub fn generate() -> anyhow::Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(k.as_mut())
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        Ok(Kek(k))
    }

    /// The base64 text form.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    fn key(&self) -> anyhow::Result<LessSafeKey> {
        let unbound = UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map_err(|_| anyhow::anyhow!("bad key-encryption key"))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Seals a private key as nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.seal_for(AAD, plain)
    }

    /// Opens what [`Kek::seal`] produced.
    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        self.open_for(AAD, sealed)
    }

    /// Seals `plain` for the purpose `aad` as nonce ‖ ciphertext ‖ tag.
    pub(super) fn seal_for(&self, aad: &[u8], plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut buf = plain.to_vec();
        self.key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("Failed to seal a key"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`Kek::seal_for`] produced for the same purpose.
    pub(super) fn open_for(&self, aad: &[u8], sealed: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        anyhow::ensure!(sealed.len() > NONCE_LEN, "sealed key too short");
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .key()?
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| anyhow::anyhow!("the key-encryption key does not open this sealed key"))?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_with_their_kek_only() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(b"pkcs8").unwrap();
        assert_eq!(kek.open(&sealed).unwrap().as_slice(), b"pkcs8");
        assert!(Kek::generate().unwrap().open(&sealed).is_err());
        let again = Kek::from_base64(&kek.to_base64()).unwrap();
        assert_eq!(again.open(&sealed).unwrap().as_slice(), b"pkcs8");
    }
}
