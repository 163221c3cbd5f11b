//! `POST /oauth2/introspect` (RFC 7662), for the wallet's own APIs.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::errors::{no_store, ErrorResponse, HttpError};
use crate::http::extractors::{ClientForm, Peer};
use crate::http::openapi::{schemas, StandardErrors};
use crate::http::paths;
use crate::http::state::AppState;
use crate::oauth::VerifiedToken;

/// Answers whether a token is active. The caller authenticates as a client
/// allowed to introspect (same throttles as the token endpoint).
#[utoipa::path(
    post,
    path = paths::INTROSPECT,
    tag = "tokens",
    request_body(content((schemas::TokenLookupForm = "application/x-www-form-urlencoded"))),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "RFC 7662 §2.2: the claims of an active token, or `{\"active\": false}` alone.",
            body = schemas::Introspection,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        StandardErrors,
    )
)]
#[tracing::instrument(level = "debug", skip_all, fields(client_id = tracing::field::Empty))]
pub async fn introspect_token(
    State(state): State<AppState>,
    peer: Peer,
    form: ClientForm,
) -> Response {
    let result = async {
        let (creds, token) = form.into_token_request()?;
        tracing::Span::current().record("client_id", creds.client_id().as_ref());
        state
            .verifier
            .introspect(&creds, &token, peer.0, state.clock.now())
            .await
    }
    .await;
    match result {
        Ok(active) => render(active.as_ref()),
        Err(e) => ErrorResponse {
            error: HttpError::Token(e),
            mode: state.mode,
        }
        .into_response(),
    }
}

/// RFC 7662 §2.2: the claims of an active token, and for anything else
/// `{"active": false}` with nothing that could tell why.
fn render(active: Option<&VerifiedToken>) -> Response {
    let body = match active {
        Some(t) => {
            let c = &t.claims;
            json!({
                "active": true,
                "scope": c.scope,
                "client_id": c.client_id,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "exp": c.exp,
                "iat": c.iat,
                "jti": c.jti,
                "token_type": "Bearer",
            })
        }
        None => json!({"active": false}),
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    resp
}
