//! Public discovery documents: the JWKS (RFC 7517) and the authorization
//! server metadata (RFC 8414).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::dialect::DialectKind;
use crate::http::openapi::schemas;
use crate::http::paths;
use crate::http::state::AppState;

pub use crate::keys::JWKS_MAX_AGE_SECS;

/// `GET /.well-known/jwks.json`: every key a live token may be signed with.
#[utoipa::path(
    get,
    path = paths::JWKS,
    tag = "discovery",
    responses((status = 200, description = "RFC 7517 JWK Set: the next, active and retiring keys.",
        body = schemas::JwkSet,
        headers(("Cache-Control" = String, description = "`public, max-age=300`: no longer than a `next` key is published before it signs."))))
)]
pub async fn get_jwks(State(state): State<AppState>) -> Response {
    let body = state.keys.current().jwks_json().to_owned();
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
    );
    resp
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §2).
#[utoipa::path(
    get,
    path = paths::METADATA,
    tag = "discovery",
    responses((status = 200, description = "RFC 8414 authorization server metadata.", body = schemas::Metadata))
)]
pub async fn get_metadata(State(state): State<AppState>) -> Response {
    let iss = &state.issuer;
    // The standard endpoint; other dialects are not RFC 8414 token endpoints.
    let token_path = state
        .dialects
        .path(DialectKind::Payvalida)
        .unwrap_or(DialectKind::Payvalida.default_path());
    Json(json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}{token_path}"),
        "jwks_uri": format!("{iss}{}", paths::JWKS),
        "introspection_endpoint": format!("{iss}{}", paths::INTROSPECT),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint": format!("{iss}{}", paths::REVOKE),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
    }))
    .into_response()
}
