//! Clients as the core sees them: typed ids, grant types, authentication
//! methods and the registered client record with its live secrets.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::distributions::{Alphanumeric, DistString};
use secrecy::SecretString;

use super::scope::ScopeSet;
use super::secret::hash_secret;

/// A client identifier: one or more RFC 6749 VSCHARs (`%x20-7E`), at most 255.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// Parses an id, refusing anything outside RFC 6749 Appendix A.1 VSCHAR.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
            Ok(ClientId(s.to_owned()))
        } else {
            Err(InvalidValue(
                "client id must be 1-255 printable ASCII characters",
            ))
        }
    }

    /// A random id of 20 alphanumeric characters; the alphabet reads the same
    /// with and without the RFC 6749 §2.3.1 form-encoding step.
    pub fn generate() -> Self {
        ClientId(Alphanumeric.sample_string(&mut rand::thread_rng(), 20))
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value that failed to parse; the message is safe to show an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);

/// A newly generated client secret: 43 alphanumeric characters, about 256
/// bits of entropy, in an alphabet where both Basic readings coincide.
pub fn generate_secret() -> SecretString {
    Alphanumeric
        .sample_string(&mut rand::thread_rng(), 43)
        .into()
}

/// The grant types ficha knows (RFC 6749 §4.3, §4.4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.3 (discouraged by RFC 9700; off unless a client allows it).
    Password,
    /// RFC 6749 §6.
    RefreshToken,
}

impl GrantType {
    /// The wire name of the grant type.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
        }
    }
}

impl FromStr for GrantType {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client_credentials" => Ok(GrantType::ClientCredentials),
            "password" => Ok(GrantType::Password),
            "refresh_token" => Ok(GrantType::RefreshToken),
            _ => Err(InvalidValue(
                "grant type must be client_credentials, password or refresh_token",
            )),
        }
    }
}

/// How a client proves its identity at the token endpoint (RFC 7591 §2 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1), always allowed.
    ClientSecretBasic,
    /// Secret in the request body, only for clients that allow it.
    ClientSecretPost,
    /// A public client (RFC 6749 §2.1): only a `client_id`, no secret.
    None,
}

impl AuthMethod {
    /// The wire name of the method.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client_secret_basic" => Ok(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Ok(AuthMethod::ClientSecretPost),
            "none" => Ok(AuthMethod::None),
            _ => Err(InvalidValue(
                "auth method must be client_secret_basic, client_secret_post or none",
            )),
        }
    }
}

/// Parses a comma-separated list of `T` (as the CLI and the store write it).
pub fn parse_list<T: FromStr<Err = InvalidValue> + Ord>(
    s: &str,
) -> Result<BTreeSet<T>, InvalidValue> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(T::from_str)
        .collect()
}

/// A stored secret: its argon2id PHC string and lifecycle, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The store's identifier of this secret version.
    pub id: i64,
    /// The argon2id PHC string.
    pub phc: String,
    /// Unix seconds when the secret was created.
    pub created_at: i64,
    /// Unix seconds after which the secret no longer works (rotation grace).
    pub expires_at: Option<i64>,
    /// Unix seconds of the last successful use, as last flushed to the store.
    pub last_used_at: Option<i64>,
}

impl StoredSecret {
    /// Whether the secret still authenticates at `now` (unix seconds).
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSecret")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's id.
    pub id: ClientId,
    /// A label for operators.
    pub name: Option<String>,
    /// Every scope the client may receive.
    pub scopes: ScopeSet,
    /// Scopes granted when a request names none; `None` means all of `scopes`.
    pub default_scopes: Option<ScopeSet>,
    /// Token lifetime in seconds; `None` means the server's default (1200).
    pub ttl: Option<u32>,
    /// The `aud` claim of its tokens; `None` means the server's default.
    pub audience: Option<String>,
    /// Audiences the client may ask for by name (an `audience` parameter);
    /// [`ANY_AUDIENCE`] allows any. Its own default audience is always allowed.
    pub allowed_audiences: BTreeSet<String>,
    /// Grant types the client may use.
    pub grants: BTreeSet<GrantType>,
    /// Authentication methods the client may use.
    pub auth_methods: BTreeSet<AuthMethod>,
    /// The provider dialects (by name, as `http::dialect` spells them) whose
    /// token paths the client may use (SPEC §5).
    pub dialects: DialectSet,
    /// The algorithm of the client's tokens.
    pub alg: crate::keys::Alg,
    /// Whether the client may call the introspection endpoint.
    pub can_introspect: bool,
    /// A disabled client is refused at once.
    pub enabled: bool,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// The client's secrets, newest first; expired ones may still be listed.
    pub secrets: Vec<StoredSecret>,
}

/// The dialects a client may use, by name: sorted, without repeats. A
/// slice rather than a `BTreeSet`: a client has one or two, and a B-tree's
/// node is about 280 bytes however few it holds, which 10,000 cached clients
/// paid about 3 MiB for (BENCHMARKS.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialectSet(Box<[String]>);

impl DialectSet {
    /// Whether the set names this dialect.
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|d| d.as_str().cmp(name)).is_ok()
    }

    /// The names, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const N: usize> From<[String; N]> for DialectSet {
    fn from(names: [String; N]) -> Self {
        names.into_iter().collect()
    }
}

impl FromIterator<String> for DialectSet {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> Self {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort_unstable();
        names.dedup();
        DialectSet(names.into_boxed_slice())
    }
}

/// The dialect a client is bound to when none is named (SPEC §5).
pub const DEFAULT_DIALECT: &str = "payvalida";

/// The entry of [`Client::allowed_audiences`] that allows any audience.
pub const ANY_AUDIENCE: &str = "*";

impl Client {
    /// A new, enabled client with the defaults SPEC §4 gives a registered
    /// client (client_credentials over Basic, the default dialect, ES256)
    /// and one secret, stored as its argon2 hash.
    pub fn new(
        id: ClientId,
        scopes: ScopeSet,
        secret: &SecretString,
        now: i64,
    ) -> anyhow::Result<Client> {
        Ok(Client {
            id,
            name: None,
            scopes,
            default_scopes: None,
            ttl: None,
            audience: None,
            allowed_audiences: BTreeSet::new(),
            grants: BTreeSet::from([GrantType::ClientCredentials]),
            auth_methods: BTreeSet::from([AuthMethod::ClientSecretBasic]),
            dialects: DialectSet::from([DEFAULT_DIALECT.to_owned()]),
            alg: crate::keys::Alg::Es256,
            can_introspect: false,
            enabled: true,
            created_at: now,
            updated_at: now,
            secrets: vec![StoredSecret {
                id: 0,
                phc: hash_secret(secret)?,
                created_at: now,
                expires_at: None,
                last_used_at: None,
            }],
        })
    }

    /// The scopes granted when a request does not name any (RFC 6749 §3.3).
    pub fn default_scope(&self) -> &ScopeSet {
        self.default_scopes.as_ref().unwrap_or(&self.scopes)
    }

    /// Whether the client's list lets it ask for `audience` by name.
    pub fn may_request_audience(&self, audience: &str) -> bool {
        self.allowed_audiences.contains(ANY_AUDIENCE) || self.allowed_audiences.contains(audience)
    }
}

/// Parses a space-separated audience list (audiences are URIs, which hold no
/// spaces); an empty text is the empty list.
pub fn parse_audiences(s: &str) -> Result<BTreeSet<String>, InvalidValue> {
    let list: BTreeSet<String> = s.split_whitespace().map(str::to_owned).collect();
    if list
        .iter()
        .all(|a| a.len() <= 255 && a.bytes().all(|b| (0x21..=0x7E).contains(&b)))
    {
        Ok(list)
    } else {
        Err(InvalidValue(
            "audiences must be printable ASCII, at most 255 characters each",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dialect_set_is_sorted_without_repeats() {
        let set: DialectSet = ["nequi", "payvalida", "nequi", "fegora"]
            .map(String::from)
            .into();
        assert_eq!(
            set.iter().map(String::as_str).collect::<Vec<_>>(),
            ["fegora", "nequi", "payvalida"]
        );
        assert!(set.contains("nequi") && set.contains("fegora"));
        assert!(!set.contains("peinau") && !set.contains(""));
        assert!(DialectSet::default().is_empty() && !set.is_empty());
    }

    #[test]
    fn client_ids_may_hold_any_vschar_including_colon_plus_percent_and_space() {
        assert!(ClientId::parse("a:b+c%d e").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("tab\t").is_err());
        assert!(ClientId::parse("ñandú").is_err());
    }

    #[test]
    fn a_new_client_takes_the_defaults_and_keeps_only_its_secrets_hash() {
        use secrecy::ExposeSecret;
        let secret = generate_secret();
        let id = ClientId::parse("shop").unwrap();
        let c = Client::new(id.clone(), ScopeSet::parse("a b").unwrap(), &secret, 7).unwrap();
        assert_eq!(c.id, id);
        assert!(c.enabled && !c.can_introspect);
        assert_eq!(c.grants, BTreeSet::from([GrantType::ClientCredentials]));
        assert_eq!(
            c.auth_methods,
            BTreeSet::from([AuthMethod::ClientSecretBasic])
        );
        assert_eq!(
            c.dialects.iter().collect::<Vec<_>>(),
            [&DEFAULT_DIALECT.to_owned()]
        );
        assert_eq!(c.alg, crate::keys::Alg::Es256);
        assert_eq!((c.created_at, c.updated_at), (7, 7));
        assert_eq!(c.secrets.len(), 1);
        let phc = &c.secrets[0].phc;
        assert!(!phc.contains(secret.expose_secret()));
        assert!(super::super::verify_secret(phc, &secret));
    }

    #[test]
    fn generated_secrets_carry_at_least_256_bits() {
        use secrecy::ExposeSecret;
        let s = generate_secret();
        // 43 characters from 62 symbols: 43 * log2(62) ≈ 256.03 bits.
        assert_eq!(s.expose_secret().len(), 43);
        assert!(s.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn audience_lists_are_space_separated_and_star_allows_any() {
        let list = parse_audiences(" https://a.example  https://b.example ").unwrap();
        assert_eq!(list.len(), 2);
        assert!(parse_audiences("bad\u{7f}").is_err());
        assert!(parse_audiences("").unwrap().is_empty());
    }

    #[test]
    fn lists_parse_with_commas_and_reject_unknown_names() {
        let g: BTreeSet<GrantType> = parse_list("client_credentials, password").unwrap();
        assert_eq!(g.len(), 2);
        assert!(parse_list::<GrantType>("implicit").is_err());
    }
}
