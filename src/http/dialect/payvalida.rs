//! The Payválida dialect: standard OAuth2 client credentials (SPEC §3,
//! RFC 6749 §4.4), a form body, and the RFC 6749 §5.1/§5.2 responses.

use axum::response::Response;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::http::extractors::{authorization, content_type_is};
use crate::oauth::{parse_form, IssuedToken, RawTokenRequest, TokenError, TokenRequest};

use super::{json_no_store, DecodeContext, Dialect, DialectKind, DialectRequest};

/// Payválida, standard OAuth2.
#[derive(Debug)]
pub struct Payvalida;

impl Dialect for Payvalida {
    fn kind(&self) -> DialectKind {
        DialectKind::Payvalida
    }

    fn decode(
        &self,
        req: &DialectRequest<'_>,
        _ctx: &DecodeContext<'_>,
    ) -> Result<TokenRequest, TokenError> {
        // RFC 6749 §4.4.2: the body is application/x-www-form-urlencoded.
        if !content_type_is(req.headers, "application/x-www-form-urlencoded") {
            return Err(TokenError::InvalidRequest(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let form = parse_form(req.body)?;
        let auth = authorization(req.headers)?;
        TokenRequest::try_from(RawTokenRequest::from_form(form, auth))
    }

    fn render_token(&self, token: &IssuedToken) -> Response {
        let mut body = json!({
            "access_token": token.access_token,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "scope": token.scope.to_string(),
        });
        // RFC 6749 §5.1: present for the password and refresh_token grants.
        if let Some(r) = &token.refresh_token {
            body["refresh_token"] = r.expose_secret().into();
        }
        json_no_store(body)
    }
}
