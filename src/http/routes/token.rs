//! The token endpoint of every dialect (SPEC §3, §5): read the request,
//! let the dialect decode it, call the one core service, let the dialect
//! render the answer.

use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;

use crate::http::dialect::{DecodeContext, DialectKind, DialectRequest};
use crate::http::errors::{ErrorResponse, HttpError};
use crate::http::extractors::{body_bytes, Peer};
use crate::http::state::AppState;
use crate::oauth::IssuedToken;

/// Issues a token for a request in `kind`'s wire format.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(dialect = %kind, client_id = tracing::field::Empty, grant_type = tracing::field::Empty)
)]
pub async fn issue_token(
    state: AppState,
    kind: DialectKind,
    peer: Peer,
    mut req: Request,
) -> Response {
    let started = Instant::now();
    let dialect = kind.adapter();
    let mut client_id = None;
    let query = req.uri().query().map(str::to_owned);
    let headers = std::mem::take(req.headers_mut());
    let result = match body_bytes(req, &state).await {
        Err(e) => Err(e.error),
        Ok(body) => {
            let input = DialectRequest {
                query: query.as_deref(),
                headers: &headers,
                body: &body,
            };
            let ctx = DecodeContext {
                claims: &state.claims,
            };
            match dialect.decode(&input, &ctx) {
                Err(e) => Err(HttpError::Token(e)),
                Ok(request) => {
                    let span = tracing::Span::current();
                    span.record("client_id", request.credentials.client_id().as_ref());
                    client_id = Some(request.credentials.client_id().as_ref().to_owned());
                    span.record("grant_type", request.grant.name());
                    state
                        .tokens
                        .issue(request, peer.0, state.clock.now())
                        .await
                        .map_err(HttpError::Token)
                }
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(token) => {
            state.metrics.issued(kind.as_str(), elapsed);
            audit(&token);
            dialect.render_token(&token)
        }
        Err(error) => {
            let error = ErrorResponse {
                error,
                mode: state.mode,
            };
            let (code, _) = error.code_and_status();
            state.metrics.failed(kind.as_str(), code, elapsed);
            dialect.render_error_for(&error, client_id.as_deref())
        }
    }
}

/// The per-token audit record: to the structured log, never a synchronous
/// database write (SPEC §3), and never the token or a sealed claim.
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

/// 405 for any method but POST, with `Allow: POST`, in `kind`'s shape.
pub async fn method_not_allowed(state: AppState, kind: DialectKind) -> Response {
    kind.adapter().render_error(&ErrorResponse {
        error: HttpError::MethodNotAllowed,
        mode: state.mode,
    })
}
