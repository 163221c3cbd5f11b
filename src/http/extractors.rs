//! Extractors for the token endpoint, with rejections that are RFC 6749
//! errors: axum's own plain-text 415/422 rejections never reach a client.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use crate::oauth::TokenError;

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

/// The remote address of the connection, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
