//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::openapi::schemas;
use crate::http::paths;
use crate::http::state::AppState;

/// `GET /health`: 200 while the process runs.
#[utoipa::path(
    get,
    path = paths::HEALTH,
    tag = "operations",
    responses((status = 200, description = "The process runs.", body = schemas::Health))
)]
pub async fn health_check() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /health/ready`: 200 only while the database answers (within two
/// seconds) and a signing key is loaded.
#[utoipa::path(
    get,
    path = paths::READY,
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and an ES256 key can sign.", body = schemas::Readiness),
        (status = 503, description = "Not ready: which part is missing.", body = schemas::Readiness)
    )
)]
pub async fn readiness_check(State(state): State<AppState>) -> Response {
    let db = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await,
        Ok(Ok(()))
    );
    let key = state.keys.current().can_sign();
    let status = if db && key {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if db && key {"ready"} else {"unavailable"}, "database": db, "signing_key": key})),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = paths::METRICS,
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text: `ficha_tokens_issued_total`, \
        `ficha_token_failures_total{error}`, `ficha_token_request_duration_seconds` (with a `dialect` label).",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
pub async fn get_metrics(State(state): State<AppState>) -> Response {
    let auth = state.tokens.authenticator().stats();
    let mut resp = state
        .metrics
        .render(auth, state.audit.stats())
        .into_response();
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}
