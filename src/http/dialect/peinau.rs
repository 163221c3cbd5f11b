//! The Peinau dialect (Falabella/FIF "API de Autenticación",
//! `/sso/oauth2/v2/token`): `Authorization: Basic id:secret` unencoded, as
//! their documentation and their own shop plugin send it, or base64; the
//! body a form or their brace form `{grant_type=client_credentials,
//! identifier=123456789}` (a Java `Map.toString()`), or JSON. The optional
//! `identifier` travels inside the token sealed under the claims key, never
//! readable in the payload. Success is `{scope, token_type, access_token,
//! expires_in}` where `expires_in` is the absolute expiry in epoch seconds,
//! as theirs is. They document no error shape, so errors are RFC 6749's.

use axum::response::Response;
use serde_json::json;

use crate::http::extractors::authorization;
use crate::keys::SEALED_CLAIM_PREFIX;
use crate::oauth::{
    encode_raw_basic, parse_form, IssuedToken, Params, RawTokenRequest, TokenError, TokenRequest,
};
use crate::sandbox::BodyFormat;

use super::{json_no_store, json_params, DecodeContext, Dialect, DialectKind, DialectRequest};

/// The longest `identifier` accepted, in bytes.
const MAX_IDENTIFIER: usize = 255;

/// Falabella/FIF Peinau.
#[derive(Debug)]
pub struct Peinau;

impl Dialect for Peinau {
    fn kind(&self) -> DialectKind {
        DialectKind::Peinau
    }

    fn name(&self) -> &'static str {
        "peinau"
    }

    fn default_path(&self) -> &'static str {
        "/peinau/sso/oauth2/v2/token"
    }

    fn body_formats(&self) -> &'static [BodyFormat] {
        &[BodyFormat::Json, BodyFormat::Brace, BodyFormat::Form]
    }

    fn decode(
        &self,
        req: &DialectRequest<'_>,
        ctx: &DecodeContext<'_>,
    ) -> Result<TokenRequest, TokenError> {
        let mut params = params(req.body)?;
        let auth = authorization(req.headers)?.map(|h| encode_raw_basic(&h).into_owned());
        let identifier = params.remove("identifier").filter(|i| !i.is_empty());
        let mut request = TokenRequest::try_from(RawTokenRequest::from_form(params, auth))?;
        if let Some(identifier) = identifier {
            if identifier.len() > MAX_IDENTIFIER || identifier.chars().any(char::is_control) {
                return Err(TokenError::InvalidRequest("identifier is malformed"));
            }
            if !ctx.claims.can_seal() {
                return Err(TokenError::Unavailable(anyhow::anyhow!(
                    "no claims key to seal the identifier"
                )));
            }
            let sealed = ctx.claims.seal(&identifier).map_err(TokenError::Internal)?;
            request
                .extra_claims
                .insert(format!("{SEALED_CLAIM_PREFIX}identifier"), sealed.into());
        }
        Ok(request)
    }

    fn render_token(&self, token: &IssuedToken) -> Response {
        json_no_store(json!({
            "scope": token.scope.to_string(),
            "token_type": "Bearer",
            "access_token": token.access_token,
            "expires_in": token.claims.exp,
        }))
    }
}

/// The body's parameters: empty, JSON, the brace form, or a form.
fn params(body: &[u8]) -> Result<Params, TokenError> {
    let text = body.trim_ascii();
    if !text.starts_with(b"{") {
        return parse_form(text);
    }
    if let Some(params) = json_params(text) {
        return params;
    }
    brace_form(text)
}

/// Reads `{key=value, key=value}`: values are taken literally (no
/// percent-decoding), and a repeated key is refused as in a form.
fn brace_form(text: &[u8]) -> Result<Params, TokenError> {
    const MALFORMED: TokenError =
        TokenError::InvalidRequest("the body is neither a form nor {key=value, ...}");
    let text = std::str::from_utf8(text).map_err(|_| MALFORMED)?;
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or(MALFORMED)?;
    let mut map = Params::default();
    for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or(MALFORMED)?;
        let k = k.trim();
        if k.is_empty() {
            return Err(MALFORMED);
        }
        if map.insert(k.to_owned(), v.trim().to_owned()).is_some() {
            return Err(TokenError::InvalidRequest("a parameter is repeated"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brace_form_reads_like_a_form() {
        let p = params(b"{grant_type=client_credentials, identifier=123456789}").unwrap();
        assert_eq!(p["grant_type"], "client_credentials");
        assert_eq!(p["identifier"], "123456789");
        assert!(params(b"{}").unwrap().is_empty());
        assert!(params(b"").unwrap().is_empty());
        assert_eq!(
            params(b"grant_type=client_credentials&identifier=1").unwrap()["identifier"],
            "1"
        );
        assert_eq!(
            params(br#"{"grant_type":"client_credentials","identifier":123}"#).unwrap()
                ["identifier"],
            "123"
        );
    }

    #[test]
    fn a_malformed_or_repeated_brace_form_is_an_invalid_request() {
        for body in [
            &b"{grant_type}"[..],
            b"{=x}",
            b"{grant_type=client_credentials",
            b"{a=1, a=2}",
        ] {
            assert!(
                matches!(params(body), Err(TokenError::InvalidRequest(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
