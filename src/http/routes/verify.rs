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
use crate::http::openapi::schemas;
use crate::http::paths;
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
#[utoipa::path(
    method(get, post, put, delete, options, patch, trace),
    path = paths::VERIFY,
    tag = "tokens",
    params(
        ("scope" = Option<String>, Query, pattern = r"^[ !#-\[\]-~]*$",
            description = "Space-separated scopes (RFC 6749 §3.3) the token must all carry."),
        ("audience" = Option<String>, Query, description = "The audience the token must be for; default the server's (`--audience`).")
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The token is valid and carries the scopes.", body = schemas::VerifiedToken,
            headers(
                ("Cache-Control" = String, description = "`no-store`."),
                ("Pragma" = String, description = "`no-cache`."),
                ("X-Ficha-Client-Id" = String, description = "The token's client."),
                ("X-Ficha-Scope" = String, description = "Its scopes, space-separated."),
                ("X-Ficha-Jti" = String, description = "Its `jti`."),
                ("X-Ficha-Sub" = String, description = "Its `sub`."),
                ("X-Ficha-Exp" = String, description = "Its `exp`, unix seconds.")
            )),
        (status = 400, description = "`invalid_request`: a malformed query (the proxy's configuration).",
            body = schemas::OAuthError,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        (status = 401, description = "`invalid_token`: no bearer token, or one that is malformed, expired, revoked, \
            signed by an unknown key or for another audience.", body = schemas::BearerError,
            headers(
                ("Cache-Control" = String, description = "`no-store`."),
                ("Pragma" = String, description = "`no-cache`."),
                ("WWW-Authenticate" = String, description = "RFC 6750 §3 `Bearer` challenge naming the error.")
            )),
        (status = 403, description = "`insufficient_scope`: the token lacks a scope.", body = schemas::BearerError,
            headers(
                ("Cache-Control" = String, description = "`no-store`."),
                ("Pragma" = String, description = "`no-cache`."),
                ("WWW-Authenticate" = String, description = "RFC 6750 §3 `Bearer` challenge naming the error and the scope.")
            )),
        (status = 503, description = "`temporarily_unavailable`: revocations cannot be checked (the database \
            has not answered for 5 s).", body = schemas::BearerError,
            headers(
                ("Cache-Control" = String, description = "`no-store`."),
                ("Pragma" = String, description = "`no-cache`."),
                ("Retry-After" = String, description = "Seconds to wait before retrying.")
            ))
    )
)]
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
