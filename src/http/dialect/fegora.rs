//! The Fegora dialect: an ASP.NET OWIN token endpoint. A form body with
//! `grant_type=password&client_id=apiApp&username=..&password=..` (the user
//! is the customer's tax id; `apiApp` is a public client) or
//! `grant_type=refresh_token&refresh_token=..&client_id=..`. Success is
//! OWIN's body, with RFC 1123 dates in `.issued` and `.expires`; errors are
//! `{error, error_description}` with 400, and an unknown client is OWIN's
//! `invalid_clientId` naming the client.

use axum::http::StatusCode;
use axum::response::Response;
use secrecy::ExposeSecret as _;
use serde_json::json;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::http::errors::{ErrorResponse, HttpError};
use crate::http::extractors::authorization;
use crate::oauth::{
    parse_form, AuthFailure, IssuedToken, Mode, RawTokenRequest, TokenError, TokenRequest,
};
use crate::sandbox::BodyFormat;

use super::{json_no_store, DecodeContext, Dialect, DialectKind, DialectRequest};

/// Fegora.
#[derive(Debug)]
pub struct Fegora;

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 1123, as OWIN writes it).
fn rfc1123(unix: i64) -> String {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

impl Dialect for Fegora {
    fn kind(&self) -> DialectKind {
        DialectKind::Fegora
    }

    fn name(&self) -> &'static str {
        "fegora"
    }

    fn default_path(&self) -> &'static str {
        "/fegora/token"
    }

    fn body_formats(&self) -> &'static [BodyFormat] {
        &[BodyFormat::Form]
    }

    fn decode(
        &self,
        req: &DialectRequest<'_>,
        _ctx: &DecodeContext<'_>,
    ) -> Result<TokenRequest, TokenError> {
        // OWIN reads the form whatever the Content-Type says; so do we.
        let form = parse_form(req.body)?;
        let auth = authorization(req.headers)?;
        TokenRequest::try_from(RawTokenRequest::from_form(form, auth))
    }

    fn render_token(&self, token: &IssuedToken) -> Response {
        let mut body = json!({
            "access_token": token.access_token,
            "token_type": "bearer",
            "expires_in": token.expires_in,
        });
        if let Some(r) = &token.refresh_token {
            body["refresh_token"] = r.expose_secret().into();
        }
        body["as:client_id"] = token.claims.client_id.clone().into();
        if let Some(u) = &token.username {
            body["userName"] = u.as_ref().into();
        }
        body[".issued"] = rfc1123(token.claims.iat).into();
        body[".expires"] = rfc1123(token.claims.exp).into();
        json_no_store(body)
    }

    fn render_error(&self, error: &ErrorResponse, client_id: Option<&str>) -> Response {
        let (code, status) = error.code_and_status();
        let body = match &error.error {
            // OWIN's own wording; production names no cause (SPEC §1).
            HttpError::Token(TokenError::InvalidClient(cause)) => {
                let id = client_id.unwrap_or_default();
                let text = match (error.mode, cause) {
                    (Mode::Sandbox, AuthFailure::UnknownClient) => {
                        format!("Client '{id}' is not registered in the system.")
                    }
                    (Mode::Sandbox, other) => format!("Client '{id}': {}.", other.describe()),
                    (Mode::Production, _) => format!("Client '{id}' is not valid."),
                };
                json!({"error": "invalid_clientId", "error_description": text})
            }
            _ => json!({"error": code, "error_description": error.description()}),
        };
        let mut resp = error.render_with(body);
        // OWIN answers every refusal with 400, a failed client included;
        // throttling, outages and 405/413 keep their status.
        if status == StatusCode::UNAUTHORIZED {
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            resp.headers_mut()
                .remove(axum::http::header::WWW_AUTHENTICATE);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc_1123_in_gmt() {
        assert_eq!(rfc1123(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
