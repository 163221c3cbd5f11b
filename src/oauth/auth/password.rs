//! The password grant's verification (Fegora dialect): the same hashing
//! pool, throttles and single flight as client secrets.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};

use super::tags::put;
use super::{throttled, Authenticator, Tag};
use crate::oauth::error::TokenError;
use crate::oauth::secret;
use crate::oauth::throttle::address_key;

impl Authenticator {
    /// Verifies a resource owner's password (password grant) on the same
    /// pool and behind the same throttles as client secrets, keyed by
    /// username; an unknown user is verified against the dummy hash.
    /// Concurrent identical attempts share one verification.
    pub async fn verify_password(
        &self,
        username: &str,
        phc: Option<&str>,
        password: &SecretString,
        peer: Option<IpAddr>,
    ) -> Result<bool, TokenError> {
        let address = address_key(peer);
        let known = phc.is_some();
        let phc: Arc<str> = phc.map_or_else(|| self.dummy_phc.clone(), Arc::from);
        let key = {
            let mut mac = self.mac.clone();
            put(&mut mac, b"password");
            put(&mut mac, username.as_bytes());
            put(&mut mac, phc.as_bytes());
            put(&mut mac, password.expose_secret().as_bytes());
            let tag: Tag = mac.finalize().into_bytes().into();
            tag
        };
        // A NUL prefix keeps usernames apart from client ids (printable ASCII).
        let pair = self.pair_key(&format!("\0user:{username}"), address);
        let matched = self
            .verifications
            .run(&key, || async {
                let charge = self
                    .throttle
                    .charge(pair, address, Instant::now())
                    .map_err(throttled)?;
                let runs = self.counters.hash_runs.clone();
                let password = password.clone();
                let ok = self
                    .hash_pool
                    .run(address, move || {
                        runs.fetch_add(1, Ordering::Relaxed);
                        secret::verify_secret(&phc, &password)
                    })
                    .await
                    .map_err(|e| TokenError::Unavailable(e.into()))?;
                if ok {
                    drop(charge);
                    Ok::<_, TokenError>(Some((0, 0)))
                } else {
                    charge.keep();
                    Ok(None)
                }
            })
            .await?;
        Ok(known && matched.is_some())
    }
}
