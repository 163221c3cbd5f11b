//! The OpenAPI 3.1 document served at `GET /openapi.json`, generated from
//! the code. Every fixed route's handler carries its `#[utoipa::path]` and
//! is mounted with `utoipa_axum::routes!`, so a route and its operation are
//! registered together ([`super::router`]); each dialect's token endpoint,
//! mounted at a configurable path, takes its operation from [`dialects`]
//! re-keyed at that path; `/sandbox/*` is documented only where it is
//! mounted. This module describes the wire; it decides nothing about it.

pub mod dialects;
mod responses;
pub mod schemas;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use utoipa::openapi::path::Paths;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::UtoipaMethodRouter;

use super::dialect::DialectKind;
use super::state::AppState;

pub use responses::{SandboxErrors, StandardErrors};

/// The document's fixed part: info, the error schemas the hand-written
/// response sets refer to, security schemes and tags. Paths come from the
/// router as it mounts them.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ficha",
        description = "OAuth2 token server for payment-wallet integrations. Every GET \
            operation also answers HEAD (RFC 9110 §9.3.2); any method an operation does not \
            list is answered 405 with an `Allow` header (in the dialect's error shape on \
            token endpoints). `/sandbox/*` exists only in sandbox mode, and each dialect's \
            token endpoint only where it is mounted (`dialect_paths`)."
    ),
    paths(get_openapi),
    components(schemas(
        schemas::OAuthError,
        schemas::FegoraError,
        schemas::PaymeError,
        schemas::BearerError
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "token", description = "The token endpoint of each provider dialect (SPEC §3, §5)."),
        (name = "tokens", description = "Introspection, revocation and verification of issued tokens."),
        (name = "discovery", description = "JWKS, RFC 8414 metadata and this document."),
        (name = "operations", description = "Liveness, readiness and metrics."),
        (name = "sandbox", description = "Fault injection and request capture; sandbox mode only.")
    )
)]
struct ApiDoc;

/// The HTTP authentication schemes, one per dialect that uses Basic (so a
/// caller can hold each dialect's credentials apart), one for the
/// introspecting client and one for bearer tokens.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut Document) {
        let components = api.components.get_or_insert_with(Default::default);
        for (name, text) in [
            ("payvalida_basic", "A client set for the payvalida dialect: `Basic base64(id:secret)`, the id and secret form-urlencoded or not (RFC 6749 §2.3.1)."),
            ("nequi_basic", "A client set for the nequi dialect."),
            ("peinau_basic", "A client set for the peinau dialect; `Basic id:secret` unencoded is accepted too, as Peinau documents it."),
            ("client_basic", "A client allowed to introspect (`client create --introspect`), or the token's own client for revocation."),
        ] {
            let mut scheme = HttpBuilder::new().scheme(HttpAuthScheme::Basic).build();
            scheme.description = Some(text.to_owned());
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
        let mut bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        bearer.description =
            Some("An access token issued by this server (RFC 6750 §2.1).".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// The document's fixed part, before any route is mounted.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// `kind`'s token endpoint at `path`: its operation (declared at the
/// dialect's default path) re-keyed at `path`, with the method router that
/// serves it.
pub fn dialect_route(
    kind: DialectKind,
    path: &str,
    method_router: MethodRouter<AppState>,
) -> UtoipaMethodRouter<AppState> {
    let docs = dialects::DialectDocs::openapi();
    let item = docs
        .paths
        .paths
        .get(kind.default_path())
        .cloned()
        .unwrap_or_default();
    let mut paths = Paths::new();
    paths.paths.insert(path.to_owned(), item);
    let schemas = docs
        .components
        .map(|c| c.schemas.into_iter().collect())
        .unwrap_or_default();
    (schemas, paths, method_router)
}

/// The document as served: operation ids made unique (an operation listed
/// under several methods shares its handler's name) and every documented
/// response header marked required, since each is always sent.
pub fn render(api: &Document) -> Bytes {
    let mut value = serde_json::to_value(api).unwrap_or_default();
    let operations = || {
        let paths = value.get("paths").and_then(|p| p.as_object());
        paths
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(|item| item.as_object())
            .flat_map(|item| item.values())
            .filter_map(|op| op.get("operationId")?.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let ids = operations();
    let paths = value.get_mut("paths").and_then(|p| p.as_object_mut());
    for item in paths.into_iter().flat_map(|p| p.values_mut()) {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            if let Some(id) = op.get_mut("operationId") {
                let name = id.as_str().unwrap_or_default().to_owned();
                if ids.iter().filter(|i| **i == name).count() > 1 {
                    *id = format!("{name}_{method}").into();
                }
            }
            let responses = op.get_mut("responses").and_then(|r| r.as_object_mut());
            for response in responses.into_iter().flat_map(|r| r.values_mut()) {
                let headers = response.get_mut("headers").and_then(|h| h.as_object_mut());
                for header in headers.into_iter().flat_map(|h| h.values_mut()) {
                    if let Some(h) = header.as_object_mut() {
                        h.insert("required".to_owned(), true.into());
                    }
                }
            }
        }
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

/// `GET /openapi.json`: this document, as the router mounted it.
#[utoipa::path(
    get,
    path = super::paths::OPENAPI,
    operation_id = "get_openapi",
    tag = "discovery",
    responses((status = 200, description = "This OpenAPI 3.1 document, as mounted.", content_type = "application/json", body = Object))
)]
pub fn get_openapi() {}

/// The route that serves `document`.
pub fn serve(document: Bytes) -> MethodRouter<AppState> {
    axum::routing::get(move || {
        let document = document.clone();
        async move {
            let mut resp = document.into_response();
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    })
}
