//! Extractors for the token, introspection and revocation endpoints, with
//! rejections that are RFC 6749 errors: axum's own plain-text 415/422
//! rejections never reach a client. Also the RFC 6750 bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use secrecy::SecretString;

use crate::oauth::{credentials, parse_form, Credentials, TokenError};

use super::errors::{ErrorResponse, HttpError};
use super::state::AppState;

/// Largest accepted token request body (SPEC §3).
pub const MAX_BODY: usize = 16 * 1024;

/// Whether the Content-Type's essence is `expected` (parameters ignored).
pub fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// The `Authorization` header as text, if present.
pub fn authorization(headers: &HeaderMap) -> Result<Option<String>, TokenError> {
    headers
        .get(AUTHORIZATION)
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                TokenError::InvalidRequest("the Authorization header is not valid Basic")
            })
        })
        .transpose()
}

/// Reads the body up to [`MAX_BODY`], mapping an oversized body to 413.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ErrorResponse> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rej| ErrorResponse {
            error: if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                HttpError::PayloadTooLarge
            } else {
                HttpError::Token(TokenError::InvalidRequest(
                    "the request body could not be read",
                ))
            },
            mode: state.mode,
        })
}

/// A form-encoded POST from a client (RFC 6749 §4.4.2, RFC 7662 §2.1,
/// RFC 7009 §2.1): Content-Type checked, repeated parameters refused, the
/// credentials header captured.
#[derive(Debug)]
pub struct ClientForm {
    /// The decoded parameters.
    pub form: crate::oauth::Params,
    /// The `Authorization` header, when one was sent.
    pub authorization: Option<String>,
}

impl FromRequest<AppState> for ClientForm {
    type Rejection = ErrorResponse;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let reject = |e: TokenError| ErrorResponse {
            error: HttpError::Token(e),
            mode: state.mode,
        };
        let is_form = content_type_is(req.headers(), "application/x-www-form-urlencoded");
        let auth = authorization(req.headers());
        let body = body_bytes(req, state).await?;
        if !is_form {
            return Err(reject(TokenError::InvalidRequest(
                "Content-Type must be application/x-www-form-urlencoded",
            )));
        }
        let form = parse_form(&body).map_err(reject)?;
        let authorization = auth.map_err(reject)?;
        Ok(ClientForm {
            form,
            authorization,
        })
    }
}

impl ClientForm {
    /// The client credentials (Basic, or `client_id`/`client_secret` in the
    /// body) and the required `token` parameter of an introspection (RFC
    /// 7662 §2.1) or revocation (RFC 7009 §2.1) request. `token_type_hint`
    /// is ignored: ficha looks up one kind of token there.
    pub fn into_token_request(mut self) -> Result<(Credentials, String), TokenError> {
        let secret = self.form.remove("client_secret").map(SecretString::from);
        let creds = credentials(
            self.authorization.as_deref(),
            self.form.get("client_id").map(String::as_str),
            secret,
        )?;
        let token = self
            .form
            .remove("token")
            .ok_or(TokenError::InvalidRequest("token is missing"))?;
        Ok((creds, token))
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1), if the
/// request carries one; any other scheme counts as no token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The client's address, when the server knows it: the connection's, or
/// behind a trusted proxy the one it forwarded (`http::client_addr`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<IpAddr>);

impl FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let connection = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Peer(connection.map(|ip| {
            state.trusted_proxies.client_addr(ip, &parts.headers)
        })))
    }
}

impl Peer {
    /// How an unknown address is written.
    pub const UNKNOWN: &'static str = "unknown";
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str(Self::UNKNOWN),
        }
    }
}
