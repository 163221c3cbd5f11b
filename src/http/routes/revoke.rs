//! `POST /oauth2/revoke` (RFC 7009).

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::http::errors::{no_store, ErrorResponse, HttpError};
use crate::http::extractors::{ClientForm, Peer};
use crate::http::openapi::{schemas, StandardErrors};
use crate::http::paths;
use crate::http::state::AppState;
use crate::oauth::Revocation;

/// Revokes a token: 200 with an empty body for any token, known or not
/// (RFC 7009 §2.2); errors only for the caller's authentication or a token
/// of another client.
#[utoipa::path(
    post,
    path = paths::REVOKE,
    tag = "tokens",
    request_body(content((schemas::TokenLookupForm = "application/x-www-form-urlencoded"))),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "Revoked, or not a live token of this client (RFC 7009 §2.2): an empty body.",
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        StandardErrors,
    )
)]
#[tracing::instrument(level = "debug", skip_all, fields(client_id = tracing::field::Empty))]
pub async fn revoke_token(State(state): State<AppState>, peer: Peer, form: ClientForm) -> Response {
    let result = async {
        let (creds, token) = form.into_token_request()?;
        tracing::Span::current().record("client_id", creds.client_id().as_ref());
        state
            .verifier
            .revoke(&creds, &token, peer.0, state.clock.now())
            .await
    }
    .await;
    match result {
        Ok(outcome) => {
            match outcome {
                Revocation::Revoked { jti, client_id } => {
                    tracing::info!(target: crate::telemetry::AUDIT_TARGET, %client_id, %jti, "token revoked");
                }
                Revocation::RefreshFamily { client_id } => {
                    tracing::info!(target: crate::telemetry::AUDIT_TARGET, %client_id, "refresh token family revoked");
                }
                Revocation::Ignored => {}
            }
            let mut resp = ().into_response();
            no_store(&mut resp);
            resp
        }
        Err(e) => ErrorResponse {
            error: HttpError::Token(e),
            mode: state.mode,
        }
        .into_response(),
    }
}
