//! Client-secret hashing: argon2id with explicit parameters, a dummy hash for
//! unknown clients, and nothing else. Verification is CPU-bound (~24 ms here)
//! and must run off the async threads; see `oauth::auth`.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// Memory cost in KiB. OWASP's Password Storage Cheat Sheet lists five
/// argon2id settings that give an equal level of defence and differ only in
/// how they trade memory for passes (m=47104/t=1, 19456/2, 12288/3, 9216/4,
/// 7168/5). ficha takes the one with the least memory: every concurrent
/// verification holds a work area of `m` KiB, and with one per core that is
/// what decides the server's peak memory (2 × 7 MiB here instead of
/// 2 × 19 MiB; BENCHMARKS.md), for about the same CPU time per verification.
/// Written out so that a library default change cannot silently weaken or
/// slow the stored hashes; hashes made with other settings keep verifying,
/// as each PHC string carries its own.
pub const ARGON2_M_COST: u32 = 7_168;
/// Iterations (see [`ARGON2_M_COST`]).
pub const ARGON2_T_COST: u32 = 5;
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

thread_local! {
    /// This thread's argon2 work area, allocated once per burst of
    /// verifications and reused within it. Freeing and reallocating 19 MiB
    /// (the former m) per verification left the allocator holding that much
    /// more resident memory after every one (a 10-client warm-up grew the
    /// server past 200 MiB); a hashing thread keeps one area while it has
    /// work and gives it back when it falls idle ([`release_work_area`]).
    static WORK_AREA: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Frees this thread's work area. The hashing threads call it when their
/// queue has stayed empty for a while (`oauth::hashpool`): otherwise each
/// would hold its area (7 MiB) resident for the life of the process, a
/// quarter of a busy server's memory, though a steady state hashes nothing.
pub fn release_work_area() {
    WORK_AREA.with(|area| *area.borrow_mut() = Vec::new());
}

/// The blocks of this thread's work area (tests).
#[cfg(test)]
pub(crate) fn work_area_blocks() -> usize {
    WORK_AREA.with(|area| area.borrow().len())
}

/// Verifies a secret against a PHC string. The parameters come from the PHC
/// string itself, so hashes made with older settings keep verifying; the
/// final comparison is constant-time.
pub fn verify_secret(phc: &str, secret: &SecretString) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    let mut out = zeroize::Zeroizing::new(vec![0u8; expected.len()]);
    let computed = WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        if area.len() < blocks {
            area.resize(blocks, argon2::Block::default());
        }
        hasher.hash_password_into_with_memory(
            secret.expose_secret().as_bytes(),
            salt,
            &mut out,
            &mut area[..blocks],
        )
    });
    computed.is_ok()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            out.as_slice(),
            expected.as_bytes(),
        ))
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
    fn verification_agrees_with_the_argon2_crate_for_other_parameters() {
        use argon2::password_hash::PasswordVerifier as _;
        let secret: SecretString = "s3cret".to_owned().into();
        // Other settings (ficha's former m=19456/t=2 among them) and the
        // argon2i variant still verify.
        for (alg, m, t) in [
            (Algorithm::Argon2id, 19_456, 2),
            (Algorithm::Argon2id, 4096, 3),
            (Algorithm::Argon2i, 8192, 3),
        ] {
            let params = Params::new(m, t, 1, None).unwrap();
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            let phc = Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"s3cret", &salt)
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(Argon2::default()
                .verify_password(b"s3cret", &parsed)
                .is_ok());
            assert!(verify_secret(&phc, &secret));
            assert!(!verify_secret(&phc, &"s3cre7".to_owned().into()));
        }
    }

    #[test]
    fn the_work_area_is_kept_between_verifications_until_released() {
        let secret: SecretString = "s3cret".to_owned().into();
        let phc = hash_secret(&secret).unwrap();
        assert!(verify_secret(&phc, &secret));
        assert_eq!(work_area_blocks(), ARGON2_M_COST as usize);
        release_work_area();
        assert_eq!(work_area_blocks(), 0);
        // A verification after a release allocates a new area.
        assert!(verify_secret(&phc, &secret));
        assert_eq!(work_area_blocks(), ARGON2_M_COST as usize);
    }

    #[test]
    fn a_hash_verifies_its_secret_and_nothing_else() {
        let secret: SecretString = "client_secret".to_owned().into();
        let phc = hash_secret(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
        assert!(verify_secret(&phc, &secret));
        assert!(!verify_secret(&phc, &"client_secreT".to_owned().into()));
        assert!(!verify_secret("not a phc", &secret));
    }
}
