//! The HTTP edge: routes, extractors, the provider dialects, the error
//! mapping, the layer stack and the serve loop with its connection limits. Everything about status codes and headers
//! lives here; the protocol decisions live in `oauth`.

pub mod dialect;
pub mod errors;
pub mod extractors;
pub mod metrics;
mod routes;
mod sandbox;
mod serve;
mod state;
mod watchdog;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use dialect::{DialectKind, DialectPaths};
pub use metrics::Metrics;
pub use serve::{serve, HttpSettings, Listener, MAX_HEADER_BYTES};
pub use state::{AppState, Shared};

/// Every route of the server, with its layers. Tests call this too.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (kind, path) in state.dialects.mounted() {
        router = router.route(path, token_route(kind));
    }
    // SPEC §6: none of /sandbox/* exists in production.
    if state.sandbox.is_some() {
        router = router
            .route(
                "/sandbox/faults",
                post(routes::sandbox::set_fault)
                    .get(routes::sandbox::list_faults)
                    .delete(routes::sandbox::clear_faults),
            )
            .route("/sandbox/requests", get(routes::sandbox::list_requests));
    }
    router
        .route(
            "/oauth2/introspect",
            post(routes::introspect::introspect_token).fallback(standard_method_not_allowed),
        )
        .route(
            "/oauth2/revoke",
            post(routes::revoke::revoke_token).fallback(standard_method_not_allowed),
        )
        // Any method: nginx's sub-request may carry the original request's.
        .route("/auth/verify", any(routes::verify::verify_request))
        .route("/.well-known/jwks.json", get(routes::discovery::get_jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(routes::discovery::get_metadata),
        )
        .route("/health", get(routes::health::health_check))
        .route("/health/ready", get(routes::health::readiness_check))
        .route("/metrics", get(routes::health::get_metrics))
        .layer(DefaultBodyLimit::max(extractors::MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(
            // Spans carry the method and the matched route, never headers
            // or bodies: those hold credentials and tokens. They are debug
            // level: a span per request at info cost about a third of the
            // token endpoint's throughput (BENCHMARKS.md), and the audit
            // event already records every token issued.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let path = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::debug_span!("http", method = %req.method(), route = path)
            }),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .with_state(state)
}

/// A dialect's token endpoint: POST issues, any other method is a 405 in the
/// dialect's shape.
/// 405 in the standard OAuth2 shape, for introspection and revocation.
async fn standard_method_not_allowed(State(state): State<AppState>) -> axum::response::Response {
    routes::token::method_not_allowed(state, DialectKind::Payvalida).await
}

fn token_route(kind: DialectKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>, peer: extractors::Peer, req: Request| {
            routes::token::issue_token(state, kind, peer, req)
        },
    )
    .fallback(move |State(state): State<AppState>| routes::token::method_not_allowed(state, kind))
}
