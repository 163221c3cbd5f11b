//! The keyed digests the authenticator remembers secrets by: what was
//! verified, what was rejected, and the throttles' (id, address) keys. All
//! are HMAC-SHA256 under a random per-process key, length-prefixed so that
//! no two different inputs hash alike; no secret is ever kept in clear.

use std::net::IpAddr;

use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};

use super::{Authenticator, HmacSha256, Tag};
use crate::oauth::client::ClientId;

/// Length-prefixed, so that no two different inputs hash alike.
pub(super) fn put(mac: &mut HmacSha256, bytes: &[u8]) {
    mac.update(&(bytes.len() as u64).to_be_bytes());
    mac.update(bytes);
}

impl Authenticator {
    pub(super) fn verified_tag(
        &self,
        id: &ClientId,
        secret_id: i64,
        presented: &SecretString,
    ) -> Tag {
        let mut mac = self.mac.clone();
        put(&mut mac, b"verified");
        put(&mut mac, id.as_ref().as_bytes());
        mac.update(&secret_id.to_be_bytes());
        put(&mut mac, presented.expose_secret().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The key of one presentation (id and every reading of the secret)
    /// against one set of live secrets: what the rejected set remembers and
    /// what concurrent identical requests share a verification by.
    pub(super) fn presentation_tag(
        &self,
        id: &ClientId,
        live: &[i64],
        secrets: &[&SecretString],
    ) -> Tag {
        let mut mac = self.mac.clone();
        put(&mut mac, b"presented");
        put(&mut mac, id.as_ref().as_bytes());
        mac.update(&(live.len() as u64).to_be_bytes());
        for s in live {
            mac.update(&s.to_be_bytes());
        }
        for s in secrets {
            put(&mut mac, s.expose_secret().as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    pub(super) fn pair_key(&self, key: &str, address: IpAddr) -> [u8; 16] {
        let mut mac = self.mac.clone();
        put(&mut mac, b"throttle");
        put(&mut mac, key.as_bytes());
        put(&mut mac, address.to_string().as_bytes());
        let full: Tag = mac.finalize().into_bytes().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}
