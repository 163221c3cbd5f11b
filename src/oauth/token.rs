//! Minting access tokens: the grant rules (which client may use which grant
//! and scope, which lifetime applies in which mode) and the RFC 9068 claims.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::auth::Authenticator;
use super::client::{Client, GrantType};
use super::error::TokenError;
use super::request::{Grant, TokenRequest};
use super::scope::ScopeSet;
use super::store::UserStore;
use super::user::{
    new_refresh_token, refresh_token_hash, NewRefreshToken, RefreshOutcome, User, Username,
};
use crate::keys::KeyRingHandle;
use secrecy::SecretString;

/// The lifetime of a token in production, and the default in sandbox.
pub const DEFAULT_TTL: u32 = 1200;

/// Which environment this deployment serves (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Seeds, per-client lifetimes, precise error descriptions.
    Sandbox,
    /// Fixed lifetime, no seeds, error descriptions that reveal nothing.
    Production,
}

/// RFC 9068 §2.2 access-token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the client id for client_credentials (RFC 9068 §2.2).
    pub sub: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Audience.
    pub aud: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expiry, unix seconds (`iat + expires_in`).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Private claims a request asked for (RFC 7519 §4.3), such as a value
    /// sealed for the operator.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Claim names a request's private claims may not take: the RFC 9068 §2.2
/// claims and the other JWT registered claims (RFC 7519 §4.1).
const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "auth_time",
    "acr",
    "amr",
];

/// A minted token and what the response needs about it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The signed JWT.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// The granted scope.
    pub scope: ScopeSet,
    /// The claims inside the token.
    pub claims: AccessClaims,
    /// The signing key id.
    pub kid: String,
    /// A rotated refresh token (password and refresh_token grants).
    pub refresh_token: Option<SecretString>,
    /// The resource owner, for user-bound tokens.
    pub username: Option<Username>,
}

/// What a token is minted with, once the grant rules have decided it.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The granted scope.
    pub scope: ScopeSet,
    /// The `aud` claim.
    pub audience: String,
    /// Lifetime in seconds.
    pub ttl: u32,
    /// Private claims.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Server-wide policy for minting.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `iss` of every token.
    pub issuer: String,
    /// `aud` when the client has none.
    pub default_audience: String,
    /// The deployment mode.
    pub mode: Mode,
    /// Lifetime of refresh tokens, in seconds.
    pub refresh_ttl: i64,
    /// Absolute lifetime of a refresh-token family, in seconds: after it
    /// the user logs in again, however often the family was rotated.
    pub refresh_max_lifetime: i64,
}

/// The default refresh-token lifetime: 14 days.
pub const DEFAULT_REFRESH_TTL: i64 = 14 * 86_400;

/// The default absolute lifetime of a refresh-token family: 90 days.
pub const DEFAULT_REFRESH_MAX_LIFETIME: i64 = 90 * 86_400;

/// Issues tokens: authenticates, applies the grant rules, signs.
pub struct TokenService {
    auth: Arc<Authenticator>,
    keys: Arc<KeyRingHandle>,
    users: Arc<dyn UserStore>,
    policy: Policy,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service over an authenticator, a key ring and the user store.
    pub fn new(
        auth: Arc<Authenticator>,
        keys: Arc<KeyRingHandle>,
        users: Arc<dyn UserStore>,
        policy: Policy,
    ) -> Self {
        TokenService {
            auth,
            keys,
            users,
            policy,
        }
    }

    /// The minting policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// RFC 6749 §4.4: authenticates the client, checks that it may use the
    /// grant and the scope, and mints a token. `now` is unix seconds.
    pub async fn issue(
        &self,
        req: TokenRequest,
        peer: Option<IpAddr>,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        let client = self.auth.authenticate(&req.credentials, peer, now).await?;
        let grant_type = match &req.grant {
            Grant::ClientCredentials => GrantType::ClientCredentials,
            Grant::Password { .. } => GrantType::Password,
            Grant::RefreshToken { .. } => GrantType::RefreshToken,
        };
        if !client.grants.contains(&grant_type) {
            return Err(TokenError::UnauthorizedClient(
                "the client may not use this grant type",
            ));
        }
        // SPEC §5: a client uses only the dialects it was set up for, so
        // that it cannot pick another provider's longer lifetime.
        if req.dialect.is_some_and(|d| !client.dialects.contains(d)) {
            return Err(TokenError::UnauthorizedClient(
                "the client may not use this dialect",
            ));
        }
        let audience = audience_for(&client, &self.policy.default_audience, req.audience)?;
        let ttl = lifetime(self.policy.mode, &client, req.lifetime)?;
        let extra = req.extra_claims;
        match req.grant {
            Grant::ClientCredentials => {
                let scope = granted_scope(&client, req.scope)?;
                self.mint(
                    &client,
                    None,
                    Minted {
                        scope,
                        audience,
                        ttl,
                        extra,
                    },
                    now,
                )
            }
            Grant::Password { username, password } => {
                let user = self.password_grant(&username, &password, peer).await?;
                let mut scope = granted_scope(&client, req.scope.clone())?;
                if let Some(allowed) = &user.scopes {
                    if req.scope.is_some() && !scope.is_subset(allowed) {
                        return Err(TokenError::InvalidScope(
                            "a requested scope is not allowed for this user",
                        ));
                    }
                    scope = scope.intersection(allowed);
                }
                let minted = Minted {
                    scope: scope.clone(),
                    audience,
                    ttl,
                    extra,
                };
                let mut token = self.mint(&client, Some(&user.username), minted, now)?;
                if client.grants.contains(&GrantType::RefreshToken) {
                    let refresh = new_refresh_token();
                    let hash = refresh_token_hash(&refresh);
                    self.users
                        .insert_refresh_token(&NewRefreshToken {
                            family_id: hash.clone(),
                            hash,
                            client_id: client.id.clone(),
                            username: user.username.clone(),
                            scope: scope.to_string(),
                            issued_at: now,
                            expires_at: now + self.policy.refresh_ttl,
                            family_expires_at: now + self.policy.refresh_max_lifetime,
                        })
                        .await
                        .map_err(TokenError::from)?;
                    token.refresh_token = Some(refresh);
                }
                Ok(token)
            }
            Grant::RefreshToken { refresh_token } => {
                let next = new_refresh_token();
                let outcome = self
                    .users
                    .use_refresh_token(
                        &refresh_token_hash(&refresh_token),
                        &client.id,
                        now,
                        &refresh_token_hash(&next),
                        now + self.policy.refresh_ttl,
                    )
                    .await
                    .map_err(TokenError::from)?;
                let (username, family_scope) = match outcome {
                    RefreshOutcome::Rotated { username, scope } => (username, scope),
                    RefreshOutcome::Reused => {
                        tracing::warn!(client_id = %client.id, "refresh token reused; its family is revoked");
                        return Err(TokenError::InvalidGrant("the refresh token is invalid"));
                    }
                    RefreshOutcome::Invalid => {
                        return Err(TokenError::InvalidGrant("the refresh token is invalid"))
                    }
                };
                let family_scope = ScopeSet::parse(&family_scope).map_err(|_| {
                    TokenError::Internal(anyhow::anyhow!("stored scope is malformed"))
                })?;
                // RFC 6749 §6: a refresh may narrow the scope, never widen it.
                let requested = match req.scope {
                    None => family_scope.clone(),
                    Some(s) if s.is_subset(&family_scope) => s,
                    Some(_) => {
                        return Err(TokenError::InvalidScope(
                            "the requested scope exceeds the original grant",
                        ))
                    }
                };
                // A scope taken from the client or the user since the grant
                // is gone at the next refresh (RFC 9700 §4.14.2).
                let mut scope = requested.intersection(&client.scopes);
                let user = self
                    .users
                    .get_user(&username)
                    .await
                    .map_err(TokenError::from)?;
                if let Some(allowed) = user.as_ref().and_then(|u| u.scopes.as_ref()) {
                    scope = scope.intersection(allowed);
                }
                if scope.is_empty() && !requested.is_empty() {
                    return Err(TokenError::InvalidScope(
                        "the granted scope is no longer allowed",
                    ));
                }
                let minted = Minted {
                    scope,
                    audience,
                    ttl,
                    extra,
                };
                let mut token = self.mint(&client, Some(&username), minted, now)?;
                token.refresh_token = Some(next);
                Ok(token)
            }
        }
    }

    /// RFC 6749 §4.3.2: the resource owner's password. Unknown user, wrong
    /// password and disabled user are one and the same `invalid_grant`.
    async fn password_grant(
        &self,
        username: &str,
        password: &SecretString,
        peer: Option<IpAddr>,
    ) -> Result<User, TokenError> {
        const BAD: TokenError = TokenError::InvalidGrant("the username or password is incorrect");
        let user = match Username::parse(username) {
            Ok(name) => self.users.get_user(&name).await.map_err(TokenError::from)?,
            Err(_) => None,
        };
        let ok = self
            .auth
            .verify_password(
                username,
                user.as_ref().map(|u| u.phc.as_str()),
                password,
                peer,
            )
            .await?;
        match user {
            Some(u) if ok && u.enabled => Ok(u),
            _ => Err(BAD),
        }
    }

    /// Signs a token for an authenticated client, on behalf of `user` when
    /// the grant involves a resource owner (then `sub` is the user).
    pub fn mint(
        &self,
        client: &Client,
        user: Option<&Username>,
        m: Minted,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        if let Some(name) = m
            .extra
            .keys()
            .find(|k| REGISTERED_CLAIMS.contains(&k.as_str()))
        {
            return Err(TokenError::Internal(anyhow::anyhow!(
                "a private claim may not be named {name}"
            )));
        }
        let Minted {
            scope,
            audience,
            ttl,
            extra,
        } = m;
        let claims = AccessClaims {
            iss: self.policy.issuer.clone(),
            sub: user.map_or_else(|| client.id.as_ref().to_owned(), |u| u.as_ref().to_owned()),
            client_id: client.id.as_ref().to_owned(),
            aud: audience,
            scope: scope.to_string(),
            iat: now,
            exp: now + i64::from(ttl),
            jti: new_jti(now),
            extra,
        };
        let ring = self.keys.current();
        let signer = ring.signer(client.alg).ok_or_else(|| {
            TokenError::Unavailable(anyhow::anyhow!("no active {} key", client.alg))
        })?;
        let access_token = signer.sign(&claims).map_err(TokenError::Internal)?;
        Ok(IssuedToken {
            access_token,
            expires_in: i64::from(ttl),
            scope,
            kid: signer.kid().to_owned(),
            claims,
            refresh_token: None,
            username: user.cloned(),
        })
    }
}

/// SPEC §1: any positive per-client lifetime in sandbox. Production allows
/// no lifetime longer than the one the request's wire format documents
/// (`documented`, by default 1200 s, the Payválida dialect's).
pub fn lifetime(mode: Mode, client: &Client, documented: Option<u32>) -> Result<u32, TokenError> {
    let documented = documented.unwrap_or(DEFAULT_TTL);
    let ttl = client.ttl.unwrap_or(documented);
    if mode == Mode::Production && ttl > documented {
        return Err(TokenError::UnauthorizedClient(
            "the client's token lifetime exceeds what production allows",
        ));
    }
    Ok(ttl)
}

/// The `aud` of a token: the client's own audience (or the server's default)
/// unless the request names one the client may ask for (RFC 8707 §2).
pub fn audience_for(
    client: &Client,
    server_default: &str,
    requested: Option<String>,
) -> Result<String, TokenError> {
    let own = client.audience.as_deref().unwrap_or(server_default);
    match requested {
        None => Ok(own.to_owned()),
        Some(a) if a == own || client.may_request_audience(&a) => Ok(a),
        Some(_) => Err(TokenError::InvalidTarget(
            "the client may not ask for this audience",
        )),
    }
}

/// RFC 6749 §3.3: every requested scope must be allowed; an omitted scope
/// means the client's default scopes.
pub fn granted_scope(client: &Client, requested: Option<ScopeSet>) -> Result<ScopeSet, TokenError> {
    match requested {
        None => Ok(client.default_scope().clone()),
        Some(s) if s.is_subset(&client.scopes) => Ok(s),
        Some(_) => Err(TokenError::InvalidScope(
            "a requested scope is not allowed for this client",
        )),
    }
}

/// The bytes a `jti` encodes (see [`new_jti`]).
const JTI_BYTES: usize = 16;

/// The length of a `jti` ficha makes: base64url of [`JTI_BYTES`], unpadded.
/// The audit buffer keeps one this long inline (`audit::entry`).
pub const JTI_LEN: usize = (JTI_BYTES * 4).div_ceil(3);

/// A `jti`: the issue second (32 bits, big-endian) then 96 random bits,
/// base64url. Random bits alone make it unique without coordination
/// between instances; the time prefix makes the jtis of one second share
/// their first five characters, so the audit trail's `jti` index takes
/// each second's batch into a few adjacent pages instead of touching
/// every page of the index (random keys cost about a fifth more CPU per
/// token with the trail on, BENCHMARKS.md). `as u32` wraps in 2106.
fn new_jti(now: i64) -> String {
    use base64::Engine as _;
    let mut b = [0u8; JTI_BYTES];
    b[..4].copy_from_slice(&(now as u32).to_be_bytes());
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b[4..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests;
