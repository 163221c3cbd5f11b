//! Resource owners and refresh tokens, for the password and refresh_token
//! grants (RFC 6749 §4.3, §6) that the Fegora dialect needs. RFC 9700 §2.4
//! says the password grant MUST NOT be used; ficha offers it only to clients
//! that are explicitly allowed it, for providers whose APIs demand it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::client::{ClientId, InvalidValue};
use super::scope::ScopeSet;

/// A username: 1-255 printable ASCII characters (a tax id, an e-mail…).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Parses a username.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
            Ok(Username(s.to_owned()))
        } else {
            Err(InvalidValue(
                "username must be 1-255 printable ASCII characters",
            ))
        }
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource owner.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The username.
    pub username: Username,
    /// argon2id PHC string of the password.
    pub phc: String,
    /// Scopes the user may delegate; `None` means no restriction beyond the client's.
    pub scopes: Option<ScopeSet>,
    /// A disabled user cannot obtain or refresh tokens.
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A freshly minted opaque refresh token: 256 random bits, base64url.
pub fn new_refresh_token() -> SecretString {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    B64.encode(b).into()
}

/// The stored form of a refresh token. A plain SHA-256 suffices: the token
/// carries 256 random bits, so there is nothing to brute-force, and lookups
/// by hash stay a primary-key read.
pub fn refresh_token_hash(token: &SecretString) -> String {
    B64.encode(Sha256::digest(token.expose_secret().as_bytes()))
}

/// A refresh token row to insert.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: String,
    /// The rotation family; the first token of a family names it.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The resource owner.
    pub username: Username,
    /// The scope granted.
    pub scope: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the store caps it at `family_expires_at`.
    pub expires_at: i64,
    /// Unix seconds after which no token of the family works, however
    /// often it was rotated.
    pub family_expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live and is now spent; its successor was stored.
    Rotated {
        /// The resource owner.
        username: Username,
        /// The scope of the family.
        scope: String,
    },
    /// The token was already spent: its whole family is now revoked.
    Reused,
    /// Unknown, expired, revoked, another client's, or its user is disabled.
    Invalid,
}
