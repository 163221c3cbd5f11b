//! The Nequi dialect (Conecta Nequi, "Token de seguridad mediante OAUTH2"):
//! `Authorization: Basic base64(client_id:client_secret)`, `grant_type` in
//! the query string as their example sends it, or in the body; the body may
//! be empty, `{}` or a form, as real Nequi clients send all three. Success is
//! exactly `{access_token, expires_in, token_type}` with their 3600-second
//! lifetime; they document no error shape, so errors are RFC 6749's.

use axum::response::Response;
use serde_json::json;

use crate::http::extractors::authorization;
use crate::oauth::{parse_form, IssuedToken, RawTokenRequest, TokenError, TokenRequest};
use crate::sandbox::BodyFormat;

use super::{json_no_store, lenient_params, DecodeContext, Dialect, DialectKind, DialectRequest};

/// Nequi.
#[derive(Debug)]
pub struct Nequi;

impl Dialect for Nequi {
    fn kind(&self) -> DialectKind {
        DialectKind::Nequi
    }

    fn name(&self) -> &'static str {
        "nequi"
    }

    fn default_path(&self) -> &'static str {
        "/nequi/oauth2/token"
    }

    fn documented_lifetime(&self) -> Option<u32> {
        Some(3600)
    }

    fn body_formats(&self) -> &'static [BodyFormat] {
        &[BodyFormat::Json, BodyFormat::Form]
    }

    fn decode(
        &self,
        req: &DialectRequest<'_>,
        _ctx: &DecodeContext<'_>,
    ) -> Result<TokenRequest, TokenError> {
        let mut params = lenient_params(req.body)?;
        // Only grant_type is read from the query string: RFC 6749 §2.3.1
        // keeps credentials out of the request URI, so nothing else there is
        // trusted.
        let query = parse_form(req.query.unwrap_or_default().as_bytes())?;
        if let Some(grant_type) = query.get("grant_type") {
            match params.get("grant_type") {
                Some(body) if body != grant_type => {
                    return Err(TokenError::InvalidRequest(
                        "grant_type differs between the query string and the body",
                    ))
                }
                Some(_) => {}
                None => {
                    params.insert("grant_type".to_owned(), grant_type.clone());
                }
            }
        }
        let auth = authorization(req.headers)?;
        let mut request = TokenRequest::try_from(RawTokenRequest::from_form(params, auth))?;
        request.lifetime = self.documented_lifetime();
        Ok(request)
    }

    fn render_token(&self, token: &IssuedToken) -> Response {
        json_no_store(json!({
            "access_token": token.access_token,
            "expires_in": token.expires_in,
            "token_type": "Bearer",
        }))
    }
}
