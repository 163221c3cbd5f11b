//! Client-secret hashing: argon2id with explicit parameters, a dummy hash for
//! unknown clients, and nothing else. Verification is CPU-bound (~24 ms here)
//! and must run off the async threads; see `oauth::auth`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// Memory cost in KiB: OWASP's first recommended argon2id setting
/// (m=19456 KiB, t=2, p=1), written out so a library default change cannot
/// silently weaken or slow the stored hashes.
pub const ARGON2_M_COST: u32 = 19_456;
/// Iterations.
pub const ARGON2_T_COST: u32 = 2;
/// Lanes.
pub const ARGON2_P_COST: u32 = 1;

fn argon2() -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(ARGON2_M_COST, ARGON2_T_COST, ARGON2_P_COST, None)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a secret into an argon2id PHC string with a fresh random salt.
pub fn hash_secret(secret: &SecretString) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = argon2()
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?
        .hash_password(secret.expose_secret().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("Failed to hash a secret: {e}"))?;
    Ok(hash.to_string())
}

/// Verifies a secret against a PHC string. The parameters come from the PHC
/// string itself, so hashes made with older settings keep verifying.
pub fn verify_secret(phc: &str, secret: &SecretString) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(secret.expose_secret().as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random secret with the production parameters, verified
/// against when the client id is unknown so that an unknown id costs the same
/// time as a wrong secret.
pub fn dummy_hash() -> anyhow::Result<String> {
    hash_secret(&super::client::generate_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_secret_and_nothing_else() {
        let secret: SecretString = "client_secret".to_owned().into();
        let phc = hash_secret(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_secret(&phc, &secret));
        assert!(!verify_secret(&phc, &"client_secreT".to_owned().into()));
        assert!(!verify_secret("not a phc", &secret));
    }
}
