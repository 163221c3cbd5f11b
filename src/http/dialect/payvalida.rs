//! The Payválida dialect: standard OAuth2 client credentials (SPEC §3,
//! RFC 6749 §4.4), a form body, and the RFC 6749 §5.1/§5.2 responses.

use axum::response::Response;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::http::extractors::{authorization, content_type_is};
use crate::oauth::{parse_form, IssuedToken, RawTokenRequest, TokenError, TokenRequest};
use crate::sandbox::BodyFormat;

use super::{json_no_store, DecodeContext, Dialect, DialectKind, DialectRequest, JwtJson};

/// Payválida, standard OAuth2.
#[derive(Debug)]
pub struct Payvalida;

impl Dialect for Payvalida {
    fn kind(&self) -> DialectKind {
        DialectKind::Payvalida
    }

    fn name(&self) -> &'static str {
        "payvalida"
    }

    fn default_path(&self) -> &'static str {
        "/oauth2/token"
    }

    fn body_formats(&self) -> &'static [BodyFormat] {
        &[BodyFormat::Form]
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
        json_no_store(TokenBody {
            access_token: JwtJson::new(&token.access_token),
            expires_in: token.expires_in,
            refresh_token: token.refresh_token.as_ref().map(|r| r.expose_secret()),
            scope: &token.claims.scope,
            token_type: "Bearer",
        })
    }
}

/// RFC 6749 §5.1, borrowed from the issued token: the hot path's answer is
/// serialized straight into the response body, the token as it is
/// ([`JwtJson`]).
/// Members in alphabetical order, as they have always been sent.
#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: JwtJson,
    expires_in: i64,
    /// Present for the password and refresh_token grants only.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: &'a str,
    token_type: &'static str,
}
