//! Every fixed route path of the server, in one place: the router mounts
//! them (through the handlers' OpenAPI operations, which name them), the
//! discovery metadata and the CLI build URLs from them, and a dialect may
//! not be mounted at any of them ([`is_reserved`]). The dialects' token
//! paths are not here: each is configurable, and its default is a fact of
//! its dialect (`Dialect::default_path`).

/// RFC 7662 token introspection.
pub const INTROSPECT: &str = "/oauth2/introspect";
/// RFC 7009 token revocation.
pub const REVOKE: &str = "/oauth2/revoke";
/// The bearer check for a reverse proxy's `auth_request`.
pub const VERIFY: &str = "/auth/verify";
/// The OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";
/// RFC 7517 JWK Set.
pub const JWKS: &str = "/.well-known/jwks.json";
/// RFC 8414 authorization server metadata.
pub const METADATA: &str = "/.well-known/oauth-authorization-server";
/// Liveness.
pub const HEALTH: &str = "/health";
/// Readiness.
pub const READY: &str = "/health/ready";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// Sandbox faults (sandbox mode only).
pub const SANDBOX_FAULTS: &str = "/sandbox/faults";
/// The sandbox's captured requests (sandbox mode only).
pub const SANDBOX_REQUESTS: &str = "/sandbox/requests";
/// The same, live, as Server-Sent Events (sandbox mode only).
pub const SANDBOX_REQUESTS_STREAM: &str = "/sandbox/requests/stream";
/// The sandbox console page (sandbox mode only).
pub const SANDBOX_CONSOLE: &str = "/sandbox/console";
/// The console's script.
pub const SANDBOX_CONSOLE_SCRIPT: &str = "/sandbox/console/console.js";
/// The console's style sheet.
pub const SANDBOX_CONSOLE_STYLE: &str = "/sandbox/console/console.css";

/// Every fixed route, whether or not this mode mounts it: a dialect
/// configured at one would make the router panic at start-up in the mode
/// that does.
pub const FIXED: [&str; 15] = [
    INTROSPECT,
    REVOKE,
    VERIFY,
    OPENAPI,
    JWKS,
    METADATA,
    HEALTH,
    READY,
    METRICS,
    SANDBOX_FAULTS,
    SANDBOX_REQUESTS,
    SANDBOX_REQUESTS_STREAM,
    SANDBOX_CONSOLE,
    SANDBOX_CONSOLE_SCRIPT,
    SANDBOX_CONSOLE_STYLE,
];

/// Whether `path` belongs to a fixed route, so no dialect may take it.
pub fn is_reserved(path: &str) -> bool {
    FIXED.contains(&path)
}
