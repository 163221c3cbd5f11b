//! The one place where errors become HTTP responses: RFC 6749 §5.2 status
//! codes and headers, `Cache-Control: no-store` on every error, fixed
//! descriptions (precise causes only in sandbox mode), and internal errors
//! logged once with their full chain. Bearer-token refusals (RFC 6750 §3)
//! are rendered here too.

use axum::http::header::{ALLOW, CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::oauth::{BearerError, Mode, ScopeSet, TokenError};

/// An error of a token-endpoint-like route.
#[derive(Debug)]
pub enum HttpError {
    /// An RFC 6749 error from the core or the request parsing.
    Token(TokenError),
    /// The body is over the size limit (413).
    PayloadTooLarge,
    /// The method is not POST (405).
    MethodNotAllowed,
}

impl From<TokenError> for HttpError {
    fn from(e: TokenError) -> Self {
        HttpError::Token(e)
    }
}

/// An error rendered for a deployment mode.
#[derive(Debug)]
pub struct ErrorResponse {
    /// The error.
    pub error: HttpError,
    /// Sandbox responses may name the cause precisely.
    pub mode: Mode,
}

impl ErrorResponse {
    /// The error code and status, for metrics and dialect adapters.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match &self.error {
            HttpError::PayloadTooLarge => ("invalid_request", StatusCode::PAYLOAD_TOO_LARGE),
            HttpError::MethodNotAllowed => ("invalid_request", StatusCode::METHOD_NOT_ALLOWED),
            HttpError::Token(e) => (e.code(), status_of(e)),
        }
    }

    /// The `error_description` for this mode.
    pub fn description(&self) -> &'static str {
        match &self.error {
            HttpError::PayloadTooLarge => "the request body is larger than 16 KiB",
            HttpError::MethodNotAllowed => "the token endpoint accepts POST only",
            // SPEC §1: production never says whether a client exists.
            HttpError::Token(TokenError::InvalidClient(cause)) if self.mode == Mode::Sandbox => {
                cause.describe()
            }
            HttpError::Token(e) => e.description(),
        }
    }
}

fn status_of(e: &TokenError) -> StatusCode {
    match e {
        TokenError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        TokenError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        TokenError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        TokenError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

impl ErrorResponse {
    /// The RFC 6749 §5.2 body: `{"error", "error_description"}`.
    pub fn standard_body(&self) -> serde_json::Value {
        let (code, _) = self.code_and_status();
        json!({"error": code, "error_description": self.description()})
    }

    /// Renders with a caller-chosen JSON body (dialects have their own).
    pub fn render_with(&self, body: serde_json::Value) -> Response {
        let (_, status) = self.code_and_status();
        self.render_as(status, body)
    }

    /// Renders with a dialect's own status and body; the headers (no-store,
    /// `WWW-Authenticate`, `Retry-After`, `Allow`) and the logging stay the
    /// same for every dialect.
    pub fn render_as(&self, status: StatusCode, body: serde_json::Value) -> Response {
        let (code, _) = self.code_and_status();
        match &self.error {
            HttpError::Token(TokenError::Internal(e)) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "internal error");
            }
            HttpError::Token(TokenError::Unavailable(e)) => {
                tracing::warn!(error.cause_chain = ?e, error.message = %e, "unavailable");
            }
            HttpError::Token(e @ TokenError::InvalidClient(_)) => {
                tracing::info!(error = code, cause = %e, "client authentication failed");
            }
            _ => tracing::debug!(error = code, "token request refused"),
        }
        let mut resp = (status, Json(body)).into_response();
        no_store(&mut resp);
        let h = resp.headers_mut();
        match &self.error {
            HttpError::Token(TokenError::InvalidClient(_)) => {
                h.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="ficha""#),
                );
            }
            HttpError::Token(TokenError::Throttled { retry_after }) => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            HttpError::Token(TokenError::Unavailable(_)) => {
                h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            HttpError::MethodNotAllowed => {
                h.insert(ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        resp
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        self.render_with(self.standard_body())
    }
}

/// A refused bearer token (RFC 6750 §3), as `/auth/verify` answers it: 401
/// `invalid_token` or 403 `insufficient_scope` with the matching
/// `WWW-Authenticate: Bearer` challenge, which a proxy can pass on.
#[derive(Debug)]
pub struct BearerErrorResponse {
    /// Why the token was refused.
    pub error: BearerError,
    /// The scope the request needed, named in the 403 challenge.
    pub required: ScopeSet,
}

impl BearerErrorResponse {
    /// The status and RFC 6750 §3.1 error code.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match &self.error {
            BearerError::Missing | BearerError::Invalid(_) | BearerError::WrongAudience => {
                ("invalid_token", StatusCode::UNAUTHORIZED)
            }
            BearerError::InsufficientScope => ("insufficient_scope", StatusCode::FORBIDDEN),
            BearerError::Unavailable(_) => {
                ("temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }

    /// A fixed description; never token data.
    pub fn description(&self) -> &'static str {
        match &self.error {
            BearerError::Missing => "no bearer token in the Authorization header",
            BearerError::Invalid(r) => r.describe(),
            BearerError::WrongAudience => "the access token was issued for another audience",
            BearerError::InsufficientScope => "the access token lacks the required scope",
            BearerError::Unavailable(_) => {
                "the server cannot check revocations right now; retry later"
            }
        }
    }
}

impl IntoResponse for BearerErrorResponse {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        let description = self.description();
        match &self.error {
            BearerError::Unavailable(e) => tracing::warn!(error.message = %e, "unavailable"),
            _ => tracing::debug!(error = code, "bearer token refused"),
        }
        let mut resp = (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        no_store(&mut resp);
        let h = resp.headers_mut();
        if let BearerError::Unavailable(_) = self.error {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
        // RFC 6750 §3: the challenge names the error; a 403 also names the
        // scope the resource needs. Scope tokens (RFC 6749 §3.3) and the
        // fixed descriptions hold no quote or backslash.
        let mut challenge =
            format!(r#"Bearer realm="ficha", error="{code}", error_description="{description}""#);
        if matches!(self.error, BearerError::InsufficientScope) && !self.required.is_empty() {
            challenge.push_str(&format!(r#", scope="{}""#, self.required));
        }
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            h.insert(WWW_AUTHENTICATE, v);
        }
        resp
    }
}
