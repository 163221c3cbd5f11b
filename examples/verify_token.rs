//! How a wallet's own Rust service checks ficha's access tokens by itself,
//! from the published JWKS, with the `jsonwebtoken` crate. Against a
//! running server:
//!
//!     cargo run --example verify_token -- http://127.0.0.1:8080 transaction TOKEN
//!
//! Offline verification cannot see revocations: where a revoked token must
//! be refused at once, ask `/oauth2/introspect` or `/auth/verify` instead.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{
    decode, decode_header, get_current_timestamp, Algorithm, DecodingKey, Validation,
};
use serde::Deserialize;

/// The claims of a ficha access token (RFC 9068 §2.2).
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Checks `token` against the JWK Set of `issuer` and requires `scope`.
pub fn verify(token: &str, jwks: &JwkSet, issuer: &str, scope: &str) -> Result<Claims, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    // RFC 9068 §4: only access tokens, never another JWT of the same key.
    if header.typ.as_deref() != Some("at+jwt") {
        return Err("not an access token".into());
    }
    let kid = header.kid.ok_or("the token has no kid")?;
    // An unknown kid may be a key published after this JWKS was fetched:
    // refetch the JWKS (at most every few minutes) before refusing.
    let jwk = jwks.find(&kid).ok_or("unknown signing key")?;
    // The algorithm comes from the key, never from the token's header.
    let alg = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return Err("unsupported key type".into()),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.leeway = 0;
    // Or require your own identifier: validation.set_audience(&["https://wallet.example"]).
    validation.validate_aud = false;
    let claims = decode::<Claims>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    // ficha's tokens are expired the second `exp` passes.
    if claims.exp <= get_current_timestamp() as i64 {
        return Err("the token has expired".into());
    }
    if !claims.scope.split(' ').any(|s| s == scope) {
        return Err(format!("the token lacks the scope {scope}"));
    }
    Ok(claims)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, scope, token] = args.as_slice() else {
        return Err("usage: verify_token ISSUER SCOPE TOKEN".into());
    };
    // Fetch once and cache (ficha serves it with Cache-Control: max-age=300).
    let jwks: JwkSet = reqwest::get(format!("{issuer}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let claims = verify(token, &jwks, issuer, scope)?;
    println!("{claims:#?}");
    Ok(())
}
