//! The Pay-me/Alignet dialect ("API de Seguridad", `POST /token`): a JSON
//! body `{action: "authorize", grant_type, audience, client_id,
//! client_secret, scope}` with the client's secret in it (so the client must
//! allow `client_secret_post`), an `ALG-API-VERSION` header that real clients
//! often omit, a scope that must include `create:token`, and `aud` = the
//! requested `audience` (one the client may ask for). Responses carry their
//! `action`/`success` envelope and `authorization.meta.status` block.
//!
//! Their documentation shows the success body only; the error body keeps the
//! same envelope with `success: false`, a status code and a Spanish message,
//! plus the RFC 6749 `error`/`error_description`, with 401 for bad client
//! credentials and 403 for what the client may not ask for (see the README
//! for the code table).

use axum::http::StatusCode;
use axum::response::Response;
use secrecy::SecretString;
use serde_json::json;

use crate::http::errors::{ErrorResponse, HttpError};
use crate::oauth::{IssuedToken, RawTokenRequest, TokenError, TokenRequest};
use crate::sandbox::BodyFormat;

use super::{json_no_store, json_params, DecodeContext, Dialect, DialectKind, DialectRequest};

/// The scope every Pay-me token request must include.
const CREATE_TOKEN: &str = "create:token";
/// The locale of Pay-me's messages.
const LOCALE: &str = "es_PE";

/// Pay-me/Alignet.
#[derive(Debug)]
pub struct Payme;

impl Dialect for Payme {
    fn kind(&self) -> DialectKind {
        DialectKind::Payme
    }

    fn name(&self) -> &'static str {
        "payme"
    }

    fn default_path(&self) -> &'static str {
        "/payme/token"
    }

    fn body_formats(&self) -> &'static [BodyFormat] {
        &[BodyFormat::Json]
    }

    fn malformed_json_prefix(&self) -> &'static str {
        r#"{"action":"authorize","success":true,"#
    }

    fn decode(
        &self,
        req: &DialectRequest<'_>,
        _ctx: &DecodeContext<'_>,
    ) -> Result<TokenRequest, TokenError> {
        let mut params = json_params(req.body)
            .ok_or(TokenError::InvalidRequest("the body must be a JSON object"))??;
        if params.remove("action").as_deref() != Some("authorize") {
            return Err(TokenError::InvalidRequest("action must be \"authorize\""));
        }
        let audience = params
            .remove("audience")
            .filter(|a| !a.trim().is_empty())
            .ok_or(TokenError::InvalidRequest("audience is missing"))?;
        // The client authenticates in the body; an Authorization header is
        // no part of this dialect and is not read.
        let raw = RawTokenRequest {
            grant_type: params.remove("grant_type"),
            client_id: params.remove("client_id"),
            client_secret: params.remove("client_secret").map(SecretString::from),
            scope: params.remove("scope"),
            audience: Some(audience),
            ..RawTokenRequest::default()
        };
        let request = TokenRequest::try_from(raw)?;
        if !request
            .scope
            .as_ref()
            .is_some_and(|s| s.contains(CREATE_TOKEN))
        {
            return Err(TokenError::InvalidScope(
                "the scope must include create:token",
            ));
        }
        Ok(request)
    }

    fn render_token(&self, token: &IssuedToken) -> Response {
        json_no_store(json!({
            "action": "authorize",
            "success": true,
            "access_token": token.access_token,
            "scope": token.scope.to_string(),
            "expires_in": token.expires_in,
            "token_type": "Bearer",
            "authorization": status_block("00", "Access Token creado"),
        }))
    }

    fn render_error(&self, error: &ErrorResponse, _client_id: Option<&str>) -> Response {
        let (code, default_status) = error.code_and_status();
        let (status, payme_code, message) = match &error.error {
            HttpError::Token(TokenError::InvalidClient(_)) => {
                (StatusCode::UNAUTHORIZED, "02", "Credenciales inválidas")
            }
            HttpError::Token(
                TokenError::InvalidScope(_)
                | TokenError::UnauthorizedClient(_)
                | TokenError::InvalidTarget(_),
            ) => (StatusCode::FORBIDDEN, "03", "Acceso denegado"),
            HttpError::Token(TokenError::UnsupportedGrantType) => {
                (default_status, "04", "Tipo de autorización no soportado")
            }
            HttpError::Token(TokenError::Throttled { .. }) => (
                default_status,
                "05",
                "Demasiados intentos; intente más tarde",
            ),
            HttpError::Token(TokenError::Unavailable(_)) => (
                default_status,
                "06",
                "Servicio no disponible; intente más tarde",
            ),
            HttpError::Token(TokenError::Internal(_)) => (default_status, "99", "Error interno"),
            _ => (default_status, "01", "Solicitud inválida"),
        };
        error.render_as(
            status,
            json!({
                "action": "authorize",
                "success": false,
                "error": code,
                "error_description": error.description(),
                "authorization": status_block(payme_code, message),
            }),
        )
    }
}

/// Pay-me's `{meta: {status: {code, message_ilgn: [{locale, value}]}}}`.
fn status_block(code: &str, message: &str) -> serde_json::Value {
    json!({
        "meta": {
            "status": {
                "code": code,
                "message_ilgn": [{"locale": LOCALE, "value": message}],
            }
        }
    })
}
