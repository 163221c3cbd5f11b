//! The sandbox console (`GET /sandbox/console`, sandbox only): one page
//! where an integrator watches their token requests arrive, sets and clears
//! faults, checks a token against this server's JWKS, and finds each
//! dialect's seed with a request to copy. The page, its script and its
//! style are compiled into the binary and served under a strict
//! Content-Security-Policy (no inline script or style, nothing from another
//! origin); the script talks only to this server's public endpoints
//! (`/sandbox/*` and the discovery documents) and checks tokens in the
//! browser with WebCrypto, so a pasted token never leaves it.

mod start;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::paths;
use crate::http::routes::sandbox::{sandbox, Answer};
use crate::http::state::AppState;
use crate::sandbox::FaultKind;

pub use start::ORIGIN;

/// The page's policy: its own script, style and requests only; no inline
/// code, no framing, no plug-ins. `img-src data:` is for the empty favicon
/// that spares the browser a request for `/favicon.ico`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("assets/console.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Where the page takes the data its script reads, and its assets' paths.
const DATA_MARKER: &str = "<!--console-data-->";
const SCRIPT_MARKER: &str = "{console.js}";
const STYLE_MARKER: &str = "{console.css}";

/// `GET /sandbox/console`: the page.
#[utoipa::path(
    get,
    path = paths::SANDBOX_CONSOLE,
    tag = "sandbox",
    responses((status = 200, description = "The sandbox console, an HTML page (its script and \
        style are the next two operations).", content_type = "text/html; charset=utf-8", body = String,
        headers(("Content-Security-Policy" = String, description = "No inline script or style; this origin only."))))
)]
pub async fn page(State(state): State<AppState>) -> Answer {
    sandbox(&state)?;
    let data = json!({
        "paths": {
            "faults": paths::SANDBOX_FAULTS,
            "stream": paths::SANDBOX_REQUESTS_STREAM,
            "metadata": paths::METADATA,
            "jwks": paths::JWKS,
        },
        "origin_marker": ORIGIN,
        "dialects": start::dialects(&state.dialects),
        "fault_kinds": FaultKind::FIXED.map(|k| k.to_string()),
        "max_delay_ms": crate::sandbox::MAX_DELAY_MS,
    });
    // A JSON data block: never run as script, so the policy allows it.
    // `<` is escaped so that no value can close the element.
    let block = format!(
        r#"<script type="application/json" id="console-data">{}</script>"#,
        data.to_string().replace('<', "\\u003c")
    );
    let html = PAGE
        .replacen(SCRIPT_MARKER, paths::SANDBOX_CONSOLE_SCRIPT, 1)
        .replacen(STYLE_MARKER, paths::SANDBOX_CONSOLE_STYLE, 1)
        .replacen(DATA_MARKER, &block, 1);
    Ok(asset(html, "text/html; charset=utf-8", "no-store"))
}

/// `GET /sandbox/console/console.js`: the page's script.
#[utoipa::path(
    get,
    path = paths::SANDBOX_CONSOLE_SCRIPT,
    tag = "sandbox",
    responses((status = 200, description = "The console's script.",
        content_type = "text/javascript; charset=utf-8", body = String))
)]
pub async fn script(State(state): State<AppState>) -> Answer {
    sandbox(&state)?;
    Ok(asset(SCRIPT, "text/javascript; charset=utf-8", "no-cache"))
}

/// `GET /sandbox/console/console.css`: the page's style.
#[utoipa::path(
    get,
    path = paths::SANDBOX_CONSOLE_STYLE,
    tag = "sandbox",
    responses((status = 200, description = "The console's style sheet.",
        content_type = "text/css; charset=utf-8", body = String))
)]
pub async fn style(State(state): State<AppState>) -> Answer {
    sandbox(&state)?;
    Ok(asset(STYLE, "text/css; charset=utf-8", "no-cache"))
}

fn asset(
    body: impl Into<axum::body::Body>,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let mut resp = body.into().into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    resp
}
