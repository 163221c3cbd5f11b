//! The wallet's side of a token: checking ficha's own access tokens for
//! introspection (RFC 7662), revocation (RFC 7009), a reverse proxy's
//! `auth_request` (RFC 6750) and `ficha token verify`.
//!
//! A token is accepted when its `typ` is `at+jwt` and its signature checks
//! against a key of the ring by `kid` (RFC 9068 §4), its `iss` is this
//! server's, it has not expired (it is expired the second its `exp` passes:
//! `now >= exp`, no leeway, SPEC §4), and its `jti` is not on the denylist.
//! Time is a parameter; the HTTP routes only adapt these results.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::auth::Authenticator;
use super::denylist::{Denylist, Stale};
use super::error::{AuthFailure, TokenError};
use super::request::Credentials;
use super::scope::ScopeSet;
use super::store::{ClientStore, UserStore};
use super::token::AccessClaims;
use super::user::refresh_token_hash;
use crate::keys::{KeyRing, KeyRingHandle, VerifyError};

/// Why a presented access token is not accepted. The `Display` text is for
/// the operator (CLI, logs); HTTP responses use [`TokenRejection::describe`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a JWS, not an RFC 9068 access token, or its claims are not ours.
    #[error("the token is malformed or not an access token")]
    Malformed,
    /// No key of the ring has the token's `kid`.
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// Signed by a key we know but issued under another issuer URL.
    #[error("the token was issued by {found:?}, not {expected:?}")]
    WrongIssuer {
        /// The issuer this verifier expects.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `now >= exp`.
    #[error("the token expired at {exp} (unix time)")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// The `jti` is on the denylist.
    #[error("the token has been revoked")]
    Revoked,
}

impl TokenRejection {
    /// A fixed description for HTTP responses, which never echo token data.
    pub fn describe(&self) -> &'static str {
        match self {
            TokenRejection::Malformed => "the access token is malformed",
            TokenRejection::UnknownKey | TokenRejection::BadSignature => {
                "the access token's signature does not verify"
            }
            TokenRejection::WrongIssuer { .. } => "the access token was not issued by this server",
            TokenRejection::Expired { .. } => "the access token has expired",
            TokenRejection::Revoked => "the access token has been revoked",
        }
    }
}

impl From<VerifyError> for TokenRejection {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Malformed => TokenRejection::Malformed,
            VerifyError::UnknownKey => TokenRejection::UnknownKey,
            VerifyError::BadSignature => TokenRejection::BadSignature,
        }
    }
}

/// A token whose signature, issuer and expiry checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The RFC 9068 claims.
    pub claims: AccessClaims,
    /// Every claim of the token, including those ficha's dialects add.
    pub all_claims: Map<String, Value>,
}

impl VerifiedToken {
    /// The granted scopes; a token whose scope does not parse grants none.
    pub fn scope(&self) -> ScopeSet {
        ScopeSet::parse(&self.claims.scope).unwrap_or_default()
    }
}

/// Checks a token's signature (by `kid`, `typ` `at+jwt`), its issuer when
/// `issuer` is given, and its expiry at `now`. Revocation is the caller's:
/// the server asks its in-memory denylist, the CLI its database.
pub fn verify_access_token(
    ring: &KeyRing,
    token: &str,
    issuer: Option<&str>,
    now: i64,
) -> Result<VerifiedToken, TokenRejection> {
    let payload: Value = ring.verify_access_token(token)?;
    let claims = AccessClaims::deserialize(&payload).map_err(|_| TokenRejection::Malformed)?;
    let Value::Object(all_claims) = payload else {
        return Err(TokenRejection::Malformed);
    };
    if let Some(expected) = issuer {
        if claims.iss != expected {
            return Err(TokenRejection::WrongIssuer {
                expected: expected.to_owned(),
                found: claims.iss,
            });
        }
    }
    // SPEC §4: expired the second `exp` passes, no leeway.
    if now >= claims.exp {
        return Err(TokenRejection::Expired { exp: claims.exp });
    }
    Ok(VerifiedToken { claims, all_claims })
}

/// Why a bearer token does not authorize a request (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// The request carries no bearer token.
    #[error("no bearer token")]
    Missing,
    /// `invalid_token`: the token is not accepted.
    #[error(transparent)]
    Invalid(TokenRejection),
    /// `insufficient_scope`: the token is valid but lacks a required scope.
    #[error("the token lacks a required scope")]
    InsufficientScope,
    /// The token was issued for another audience.
    #[error("the token was issued for another audience")]
    WrongAudience,
    /// The denylist is stale, so a revoked token cannot be told apart.
    #[error(transparent)]
    Unavailable(Stale),
}

/// What a revocation request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The token's `jti` is now on the denylist.
    Revoked {
        /// The revoked token's id.
        jti: String,
        /// The client the token was issued to.
        client_id: String,
    },
    /// The token was a refresh token: it and every token of its rotation
    /// family are revoked (RFC 7009 §2.1, RFC 9700 §4.14.2).
    RefreshFamily {
        /// The client the refresh token was issued to.
        client_id: String,
    },
    /// The token was not a live token of this server; nothing to do
    /// (RFC 7009 §2.2: "invalid tokens do not cause an error response").
    Ignored,
}

/// Verifies, introspects and revokes this server's tokens.
pub struct TokenVerifier {
    auth: Arc<Authenticator>,
    keys: Arc<KeyRingHandle>,
    clients: Arc<dyn ClientStore>,
    users: Arc<dyn UserStore>,
    denylist: Arc<Denylist>,
    issuer: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier of the tokens `issuer` signs with `keys`; revocations go
    /// to `clients` (the denylist) and `users` (refresh token families).
    pub fn new(
        auth: Arc<Authenticator>,
        keys: Arc<KeyRingHandle>,
        clients: Arc<dyn ClientStore>,
        users: Arc<dyn UserStore>,
        denylist: Arc<Denylist>,
        issuer: String,
    ) -> Self {
        TokenVerifier {
            auth,
            keys,
            clients,
            users,
            denylist,
            issuer,
        }
    }

    /// The denylist this verifier consults.
    pub fn denylist(&self) -> &Arc<Denylist> {
        &self.denylist
    }

    /// Checks a token completely: signature, issuer, expiry, revocation.
    /// No database round trip: the denylist is in memory.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, BearerError> {
        let verified = verify_access_token(&self.keys.current(), token, Some(&self.issuer), now)
            .map_err(BearerError::Invalid)?;
        match self.denylist.check(&verified.claims.jti, now) {
            Ok(false) => Ok(verified),
            Ok(true) => Err(BearerError::Invalid(TokenRejection::Revoked)),
            Err(stale) => Err(BearerError::Unavailable(stale)),
        }
    }

    /// RFC 6750: whether a request's bearer token is valid and carries
    /// every scope of `required`, and names `audience` (RFC 9068 §4).
    pub fn authorize(
        &self,
        token: Option<&str>,
        required: &ScopeSet,
        audience: &str,
        now: i64,
    ) -> Result<VerifiedToken, BearerError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(BearerError::Missing)?;
        let verified = self.verify(token, now)?;
        if audience != verified.claims.aud {
            return Err(BearerError::WrongAudience);
        }
        if !required.is_subset(&verified.scope()) {
            return Err(BearerError::InsufficientScope);
        }
        Ok(verified)
    }

    /// RFC 7662 §2: authenticates the caller, which must be allowed to
    /// introspect, then returns the token when it is active and `None` for
    /// anything else (expired, revoked, forged, garbage: §2.2 says the
    /// response for those is `{"active": false}` and nothing more).
    pub async fn introspect(
        &self,
        credentials: &Credentials,
        token: &str,
        peer: Option<IpAddr>,
        now: i64,
    ) -> Result<Option<VerifiedToken>, TokenError> {
        let client = self.auth.authenticate(credentials, peer, now).await?;
        if !client.can_introspect {
            return Err(TokenError::InvalidClient(AuthFailure::NotAllowed));
        }
        match self.verify(token, now) {
            Ok(v) => Ok(Some(v)),
            Err(BearerError::Unavailable(stale)) => Err(TokenError::Unavailable(stale.into())),
            Err(_) => Ok(None),
        }
    }

    /// RFC 7009 §2.1: authenticates the caller and puts the token's `jti`
    /// on the denylist, in the database (so every instance learns it from
    /// the change log) and in this instance's memory at once.
    ///
    /// A client may revoke the tokens issued to it; a client allowed to
    /// introspect (a wallet's resource server) may revoke any token, for
    /// instance one it saw leak. Any other client is refused with
    /// `unauthorized_client`. A token that is not a live token of this
    /// server is ignored with success (§2.2).
    pub async fn revoke(
        &self,
        credentials: &Credentials,
        token: &str,
        peer: Option<IpAddr>,
        now: i64,
    ) -> Result<Revocation, TokenError> {
        let client = self.auth.authenticate(credentials, peer, now).await?;
        let Ok(verified) =
            verify_access_token(&self.keys.current(), token, Some(&self.issuer), now)
        else {
            // RFC 7009 §2: refresh tokens MUST be revocable. Revoking one
            // revokes its family, so that no successor of a leaked token
            // lives on; revoking an access token revokes nothing else.
            return self.revoke_refresh(&client, token).await;
        };
        let claims = verified.claims;
        if claims.client_id != client.id.as_ref() && !client.can_introspect {
            return Err(TokenError::UnauthorizedClient(
                "the token was not issued to this client",
            ));
        }
        self.clients
            .revoke_token(&claims.jti, claims.exp, now)
            .await
            .map_err(TokenError::from)?;
        self.denylist.insert(claims.jti.clone(), claims.exp);
        Ok(Revocation::Revoked {
            jti: claims.jti,
            client_id: claims.client_id,
        })
    }
}

impl TokenVerifier {
    /// Revokes the family of a refresh token issued to `client` (or to
    /// anyone, when `client` may introspect); an unknown token is ignored.
    async fn revoke_refresh(
        &self,
        client: &super::client::Client,
        token: &str,
    ) -> Result<Revocation, TokenError> {
        let hash = refresh_token_hash(&token.to_owned().into());
        let Some(owner) = self
            .users
            .refresh_token_owner(&hash)
            .await
            .map_err(TokenError::from)?
        else {
            return Ok(Revocation::Ignored);
        };
        if owner != client.id && !client.can_introspect {
            return Err(TokenError::UnauthorizedClient(
                "the token was not issued to this client",
            ));
        }
        self.users
            .revoke_refresh_family(&hash)
            .await
            .map_err(TokenError::from)?;
        Ok(Revocation::RefreshFamily {
            client_id: owner.as_ref().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::keys::Alg;

    const ISS: &str = "https://auth.wallet.example";
    const NOW: i64 = 1_700_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "payvalida".into(),
            client_id: "payvalida".into(),
            aud: "https://wallet.example".into(),
            scope: "transaction".into(),
            iat: NOW,
            exp: NOW + 1200,
            jti: "jti-1".into(),
            extra: Default::default(),
        }
    }

    fn b64(v: serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// `token` with its header replaced (the signature no longer matches).
    fn with_header(token: &str, header: serde_json::Value) -> String {
        let (_, rest) = token.split_once('.').unwrap();
        format!("{}.{rest}", b64(header))
    }

    #[test]
    fn each_defect_of_a_token_has_its_rejection() {
        let ring = KeyRing::ephemeral(&[Alg::Es256]).unwrap();
        let signer = ring.signer(Alg::Es256).unwrap().clone();
        let kid = signer.kid().to_owned();
        let good = signer.sign(&claims()).unwrap();
        // A character inside the signature, clear of the last one's
        // padding bits.
        let at = good.len() - 10;
        let swap = if &good[at..=at] == "A" { "B" } else { "A" };
        let flipped = format!("{}{swap}{}", &good[..at], &good[at + 1..]);
        let other_iss = signer
            .sign(&AccessClaims {
                iss: "https://elsewhere.example".into(),
                ..claims()
            })
            .unwrap();
        let id_token_header = b64(json_header("JWT", &kid));
        let not_at_jwt = signer
            .sign_with_header(&id_token_header, &claims())
            .unwrap();
        let no_jti = signer
            .sign(&serde_json::json!({"iss": ISS, "exp": NOW + 60}))
            .unwrap();

        let cases: Vec<(&str, String, i64, Result<(), TokenRejection>)> = vec![
            ("valid", good.clone(), NOW, Ok(())),
            ("one second before exp", good.clone(), NOW + 1199, Ok(())),
            (
                "at exp",
                good.clone(),
                NOW + 1200,
                Err(TokenRejection::Expired { exp: NOW + 1200 }),
            ),
            (
                "after exp",
                good.clone(),
                NOW + 5000,
                Err(TokenRejection::Expired { exp: NOW + 1200 }),
            ),
            (
                "flipped signature",
                flipped,
                NOW,
                Err(TokenRejection::BadSignature),
            ),
            (
                "unknown kid",
                with_header(&good, json_header("at+jwt", "no-such-kid")),
                NOW,
                Err(TokenRejection::UnknownKey),
            ),
            (
                "other issuer",
                other_iss,
                NOW,
                Err(TokenRejection::WrongIssuer {
                    expected: ISS.into(),
                    found: "https://elsewhere.example".into(),
                }),
            ),
            ("typ JWT", not_at_jwt, NOW, Err(TokenRejection::Malformed)),
            (
                "missing claims",
                no_jti,
                NOW,
                Err(TokenRejection::Malformed),
            ),
            (
                "garbage",
                "not.a.token".into(),
                NOW,
                Err(TokenRejection::Malformed),
            ),
            ("empty", String::new(), NOW, Err(TokenRejection::Malformed)),
        ];
        for (name, token, now, expected) in cases {
            let got = verify_access_token(&ring, &token, Some(ISS), now).map(|v| {
                assert_eq!(v.claims, claims(), "{name}");
            });
            assert_eq!(got, expected, "{name}");
        }
    }

    fn json_header(typ: &str, kid: &str) -> serde_json::Value {
        serde_json::json!({"alg": "ES256", "typ": typ, "kid": kid})
    }

    #[test]
    fn without_an_expected_issuer_any_issuer_signed_with_our_keys_passes() {
        let ring = KeyRing::ephemeral(&[Alg::Es256]).unwrap();
        let token = ring.signer(Alg::Es256).unwrap().sign(&claims()).unwrap();
        let v = verify_access_token(&ring, &token, None, NOW).unwrap();
        assert_eq!(v.all_claims["jti"], "jti-1");
        assert!(v.scope().contains("transaction"));
    }

    #[test]
    fn a_ring_read_from_the_jwks_verifies_the_same_tokens() {
        let ring = KeyRing::ephemeral(&[Alg::Es256]).unwrap();
        let token = ring.signer(Alg::Es256).unwrap().sign(&claims()).unwrap();
        let remote = KeyRing::from_jwks(ring.jwks_json()).unwrap();
        assert!(verify_access_token(&remote, &token, Some(ISS), NOW).is_ok());
        assert!(KeyRing::from_jwks(r#"{"keys":[]}"#).is_err());
        assert!(KeyRing::from_jwks("[]").is_err());
    }
}
