//! `GET /auth/verify?scope=S` for a reverse proxy's sub-request (nginx
//! `auth_request`): 200 when the request's bearer token is valid and
//! carries S, else 401/403 with an RFC 6750 challenge. It costs a signature
//! check and an in-memory denylist lookup, never a database round trip.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::errors::{no_store, BearerErrorResponse, ErrorResponse, HttpError};
use crate::http::extractors::bearer_token;
use crate::http::state::AppState;
use crate::oauth::{parse_form, ScopeSet, TokenError};

/// The headers a 200 carries for the upstream (nginx `auth_request_set`).
pub const CLIENT_ID_HEADER: &str = "x-ficha-client-id";
/// The granted scopes, space-separated.
pub const SCOPE_HEADER: &str = "x-ficha-scope";
/// The token's `jti`.
pub const JTI_HEADER: &str = "x-ficha-jti";
/// The token's `sub`.
pub const SUBJECT_HEADER: &str = "x-ficha-sub";
/// The token's `exp`, unix seconds.
pub const EXPIRES_HEADER: &str = "x-ficha-exp";

/// Checks the request's bearer token against `scope` (space-separated, all
/// required; none means any valid token) and its `aud` against `audience`
/// (default: the server's audience).
#[tracing::instrument(level = "debug", skip_all, fields(client_id = tracing::field::Empty))]
pub async fn verify_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse_form(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return bad_request(&state, e),
    };
    let Ok(required) = ScopeSet::parse(params.get("scope").map_or("", String::as_str)) else {
        return bad_request(&state, TokenError::InvalidRequest("scope is malformed"));
    };
    // RFC 9068 §4: the token must be meant for this resource; without
    // `audience`, that is the server's own audience (SPEC §4).
    let audience = params.get("audience").map_or(
        state.tokens.policy().default_audience.as_str(),
        String::as_str,
    );
    match state.verifier.authorize(
        bearer_token(&headers),
        &required,
        audience,
        state.clock.now(),
    ) {
        Ok(token) => {
            let c = &token.claims;
            tracing::Span::current().record("client_id", c.client_id.as_str());
            let mut resp =
                Json(json!({"active": true, "client_id": c.client_id, "scope": c.scope}))
                    .into_response();
            no_store(&mut resp);
            let h = resp.headers_mut();
            for (name, value) in [
                (CLIENT_ID_HEADER, c.client_id.as_str()),
                (SCOPE_HEADER, c.scope.as_str()),
                (JTI_HEADER, c.jti.as_str()),
                (SUBJECT_HEADER, c.sub.as_str()),
                (EXPIRES_HEADER, &c.exp.to_string()),
            ] {
                if let Ok(v) = HeaderValue::from_str(value) {
                    h.insert(HeaderName::from_static(name), v);
                }
            }
            resp
        }
        Err(error) => BearerErrorResponse { error, required }.into_response(),
    }
}

/// A malformed query is the proxy configuration's fault: 400, which nginx
/// turns into a 500 for its client.
fn bad_request(state: &AppState, e: TokenError) -> Response {
    ErrorResponse {
        error: HttpError::Token(e),
        mode: state.mode,
    }
    .into_response()
}
