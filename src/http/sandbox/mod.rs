//! Sandbox faults and request capture at the token endpoint's edge (SPEC
//! §6): the injected errors, the cut-short body and the spoiled tokens each
//! dialect answers with, and the masked record of every token request. The
//! core issues tokens as always; what the client receives is altered here.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;

use crate::http::dialect::Dialect;
use crate::http::errors::no_store;
use crate::keys::{Alg, KeyRing};
use crate::oauth::{IssuedToken, TokenError};
use crate::sandbox::{masked_headers, FaultKind};

mod hooks;

pub use hooks::{Answered, BeforeIssue, Hooks};

/// How far past its `exp` an `expired-token` fault's token is: beyond the
/// 60-second leeway common verifiers (jsonwebtoken, most JWT libraries)
/// allow, so that every verifier rejects it.
pub const EXPIRED_BY_SECS: i64 = 300;

/// The error a `status:CODE` fault answers with, rendered by the dialect
/// like any other: 429 and 503 carry `Retry-After`.
pub fn injected_error(code: u16) -> TokenError {
    match code {
        429 => TokenError::Throttled {
            retry_after: std::time::Duration::from_secs(1),
        },
        503 => TokenError::Unavailable(anyhow::anyhow!("sandbox fault status:503")),
        _ => TokenError::Internal(anyhow::anyhow!("sandbox fault status:500")),
    }
}

/// A 200 with the dialect's JSON content type whose body stops halfway
/// through the access token, as a connection cut mid-response leaves it.
pub fn malformed_json(dialect: &dyn Dialect) -> Response {
    const CUT: &str =
        r#""access_token":"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJpc3MiOiJodHRw"#;
    let body = format!("{}{CUT}", dialect.malformed_json_prefix());
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(&mut resp);
    resp
}

/// Spoils a freshly issued token as `fault` says; other kinds leave it be.
pub fn spoil_token(
    fault: FaultKind,
    mut token: IssuedToken,
    ring: &KeyRing,
) -> Result<IssuedToken, TokenError> {
    let signer = [Alg::Es256, Alg::Rs256]
        .into_iter()
        .filter_map(|alg| ring.signer(alg))
        .find(|s| s.kid() == token.kid)
        .ok_or_else(|| TokenError::Unavailable(anyhow::anyhow!("the signing key rotated")))?;
    match fault {
        FaultKind::ExpiredToken => {
            // Issued a lifetime and five minutes ago: correctly signed,
            // correctly formed, and expired.
            token.claims.exp = token.claims.iat - EXPIRED_BY_SECS;
            token.claims.iat = token.claims.exp - token.expires_in;
            token.access_token = signer.sign(&token.claims).map_err(TokenError::Internal)?;
        }
        FaultKind::WrongKid => {
            let kid = unpublished_kid(ring);
            token.access_token = signer
                .sign_with_kid(&kid, &token.claims)
                .map_err(TokenError::Internal)?;
            token.kid = kid;
        }
        FaultKind::BadSignature => token.access_token = flip_signature(&token.access_token),
        FaultKind::Status(_) | FaultKind::Delay(_) | FaultKind::MalformedJson => {}
    }
    Ok(token)
}

/// A key id shaped like ficha's (a base64url SHA-256 thumbprint) that the
/// JWKS does not publish.
fn unpublished_kid(ring: &KeyRing) -> String {
    loop {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
        let kid = B64.encode(b);
        if !ring.published().iter().any(|k| k.kid == kid) {
            return kid;
        }
    }
}

/// The same header and payload with one bit of the signature flipped.
fn flip_signature(jws: &str) -> String {
    let Some((signed, sig)) = jws.rsplit_once('.') else {
        return format!("{jws}.");
    };
    match B64.decode(sig) {
        Ok(mut bytes) if !bytes.is_empty() => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            format!("{signed}.{}", B64.encode(bytes))
        }
        _ => format!("{signed}.{}", B64.encode(b"not a signature")),
    }
}

/// The request's headers, masked for the log.
pub fn capture_headers(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    masked_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().ok())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_signature_keeps_the_header_and_payload() {
        let jws = format!("aGVhZA.cGF5bG9hZA.{}", B64.encode([7u8; 64]));
        let bad = flip_signature(&jws);
        assert_ne!(bad, jws);
        assert!(bad.starts_with("aGVhZA.cGF5bG9hZA."));
        assert_eq!(
            B64.decode(bad.rsplit('.').next().unwrap()).unwrap().len(),
            64
        );
    }
}
