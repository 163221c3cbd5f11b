//! The HTTP edge: routes, extractors, the provider dialects, the error
//! mapping, the layer stack and the serve loop with its connection limits.
//! Everything about status codes and headers lives here; the protocol
//! decisions live in `oauth`. The OpenAPI document (`openapi`) is built
//! from the routes as they are mounted.

mod client_addr;
mod console;
pub mod dialect;
pub mod errors;
pub mod extractors;
pub mod metrics;
pub mod openapi;
pub mod paths;
mod routes;
mod sandbox;
mod serve;
mod state;
mod timeout;
pub mod tls;
mod watchdog;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::routing::{any, post, MethodRouter};
use axum::Router;
use timeout::RequestTimeoutLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

pub use client_addr::TrustedProxies;
pub use dialect::{DialectKind, DialectPaths};
pub use metrics::Metrics;
pub use serve::{serve, serve_tls, HttpSettings, Listener, MAX_HEADER_BYTES};
pub use state::{AppState, Shared};

/// Every route of the server, with its layers. Tests call this too.
pub fn router(state: AppState) -> Router {
    let (router, api) = routes(&state).split_for_parts();
    let router = router
        .route(paths::OPENAPI, openapi::serve(openapi::render(&api)))
        .layer(DefaultBodyLimit::max(extractors::MAX_BODY))
        .layer(RequestTimeoutLayer::new(REQUEST_TIMEOUT));
    let router = match request_spans() {
        Some(spans) => router.layer(spans),
        None => router,
    };
    router
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .with_state(state)
}

/// The longest a handler may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The layer of [`request_spans`].
type RequestSpans = TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
>;

/// A debug span per request, when debug events of this module are
/// recorded at all (the log filter is set at start-up). Spans carry the
/// method and the matched route, never headers or bodies: those hold
/// credentials and tokens. They are debug level: a span per request at info
/// cost about a third of the token endpoint's throughput, and the layer
/// itself, recording nothing, still cost about 0.6 % (BENCHMARKS.md); the
/// audit event already records every token issued, and `http::errors` logs
/// every internal error.
fn request_spans() -> Option<RequestSpans> {
    fn span(req: &Request) -> tracing::Span {
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::debug_span!("http", method = %req.method(), route = path)
    }
    tracing::enabled!(tracing::Level::DEBUG)
        .then(|| TraceLayer::new_for_http().make_span_with(span as fn(&Request) -> tracing::Span))
}

/// Every route but `/openapi.json`, each registered with its OpenAPI
/// operation: the document cannot list a route the router lacks, nor miss
/// one it has (`tests/api/openapi.rs` checks both ways).
fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(openapi::base());
    for (kind, path) in state.dialects.mounted() {
        router = router.routes(openapi::dialect_route(kind, path, token_route(kind)));
    }
    // SPEC §6: none of /sandbox/* exists in production.
    if state.sandbox.is_some() {
        router = router
            .routes(routes!(
                routes::sandbox::set_fault,
                routes::sandbox::list_faults,
                routes::sandbox::clear_faults
            ))
            .routes(routes!(routes::sandbox::list_requests))
            .routes(routes!(routes::stream::stream_requests))
            .routes(routes!(console::page))
            .routes(routes!(console::script))
            .routes(routes!(console::style));
    }
    router
        .routes(with_fallback(
            routes!(routes::introspect::introspect_token),
            standard_method_not_allowed,
        ))
        .routes(with_fallback(
            routes!(routes::revoke::revoke_token),
            standard_method_not_allowed,
        ))
        // Any method: nginx's sub-request may carry the original request's.
        .routes(with_method_router(
            routes!(routes::verify::verify_request),
            any(routes::verify::verify_request),
        ))
        .routes(routes!(routes::discovery::get_jwks))
        .routes(routes!(routes::discovery::get_metadata))
        .routes(routes!(routes::health::health_check))
        .routes(routes!(routes::health::readiness_check))
        .routes(routes!(routes::health::get_metrics))
}

/// A documented route whose other methods answer `fallback`.
fn with_fallback<H, T>(
    (schemas, paths, methods): UtoipaMethodRouter<AppState>,
    fallback: H,
) -> UtoipaMethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    (schemas, paths, methods.fallback(fallback))
}

/// A documented route served by another method router than the one
/// `routes!` builds from the documented methods.
fn with_method_router(
    (schemas, paths, _): UtoipaMethodRouter<AppState>,
    methods: MethodRouter<AppState>,
) -> UtoipaMethodRouter<AppState> {
    (schemas, paths, methods)
}

/// 405 in the standard OAuth2 shape, for introspection and revocation.
async fn standard_method_not_allowed(State(state): State<AppState>) -> axum::response::Response {
    routes::token::method_not_allowed(state, DialectKind::Payvalida).await
}

/// A dialect's token endpoint. POST runs [`routes::token::issue_token`]
/// (extract → decode → issue → render, with the sandbox's hooks in sandbox
/// mode), so a refusal is in the dialect's shape too. Any other method,
/// HEAD and OPTIONS included, is a 405 with `Allow: POST` in the dialect's
/// error shape; it is neither counted in the token metrics nor recorded in
/// the sandbox's request log.
fn token_route(kind: DialectKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>, peer: extractors::Peer, req: Request| {
            routes::token::issue_token(state, kind, peer, req)
        },
    )
    .fallback(move |State(state): State<AppState>| routes::token::method_not_allowed(state, kind))
}
