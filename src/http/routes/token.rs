//! `POST /oauth2/token`, the Payválida dialect (standard OAuth2, SPEC §3).

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::http::errors::{no_store, ErrorResponse, HttpError};
use crate::http::extractors::{Peer, TokenForm};
use crate::http::state::AppState;
use crate::oauth::{IssuedToken, TokenRequest};

/// Issues a token for a client-credentials request.
#[tracing::instrument(skip_all, fields(client_id = tracing::field::Empty, grant_type = tracing::field::Empty))]
pub async fn issue_token(
    State(state): State<AppState>,
    peer: Peer,
    TokenForm(raw): TokenForm,
) -> Response {
    let started = Instant::now();
    let span = tracing::Span::current();
    if let Some(g) = raw.grant_type.as_deref() {
        span.record("grant_type", g);
    }
    let result = match TokenRequest::try_from(raw) {
        Ok(req) => {
            span.record("client_id", req.credentials.client_id().as_ref());
            state.tokens.issue(req, peer.0, state.clock.now()).await
        }
        Err(e) => Err(e),
    };
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(token) => {
            state.metrics.issued("payvalida", elapsed);
            audit(&token);
            render_token(&token)
        }
        Err(e) => {
            state.metrics.failed("payvalida", e.code(), elapsed);
            ErrorResponse {
                error: HttpError::Token(e),
                mode: state.mode,
            }
            .into_response()
        }
    }
}

/// The per-token audit record: to the structured log, never a synchronous
/// database write (SPEC §3), and never the token itself.
pub fn audit(token: &IssuedToken) {
    tracing::info!(
        target: "ficha::audit",
        client_id = %token.claims.client_id,
        scope = %token.claims.scope,
        jti = %token.claims.jti,
        kid = %token.kid,
        exp = token.claims.exp,
        "token issued"
    );
}

/// RFC 6749 §5.1 success response.
fn render_token(token: &IssuedToken) -> Response {
    let mut body = json!({
        "access_token": token.access_token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "scope": token.scope.to_string(),
    });
    if let Some(r) = &token.refresh_token {
        body["refresh_token"] = r.expose_secret().into();
    }
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    resp
}

/// 405 for any method but POST, with `Allow: POST`.
pub async fn method_not_allowed(State(state): State<AppState>) -> Response {
    ErrorResponse {
        error: HttpError::MethodNotAllowed,
        mode: state.mode,
    }
    .into_response()
}
