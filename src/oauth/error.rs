//! The token endpoint's errors: exactly the RFC 6749 §5.2 codes, RFC 8707's
//! `invalid_target` for a requested audience, plus the two
//! conditions a server must be able to report about itself (throttling and
//! unavailability). Descriptions are fixed, safe strings; the cause of an error
//! goes to the log, never into the response. The HTTP mapping lives in
//! `http::errors` and nowhere else.

use std::time::Duration;

/// An error of the token endpoint, one variant per RFC 6749 §5.2 code.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// "The request is missing a required parameter, includes an unsupported
    /// parameter value (other than grant type), repeats a parameter, includes
    /// multiple credentials, utilizes more than one mechanism for
    /// authenticating the client, or is otherwise malformed."
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// "Client authentication failed (e.g., unknown client, no client
    /// authentication included, or unsupported authentication method)."
    /// The cause is for logs and sandbox descriptions only.
    #[error("invalid_client: {}", .0.describe())]
    InvalidClient(AuthFailure),
    /// "The provided authorization grant [...] or refresh token is invalid,
    /// expired, revoked [...]."
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// "The authenticated client is not authorized to use this authorization
    /// grant type."
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// "The authorization grant type is not supported by the authorization
    /// server."
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// "The requested scope is invalid, unknown, malformed, or exceeds the
    /// scope granted by the resource owner."
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// RFC 8707 §2 `invalid_target`: "The requested resource is invalid,
    /// missing, unknown, or malformed." Here: an audience the client may not
    /// ask for.
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// Too many failed authentications for this client id or address; the
    /// caller may retry after the given delay.
    #[error("throttled")]
    Throttled { retry_after: Duration },
    /// RFC 6749 §4.1.2.1 `temporarily_unavailable`: the store or the key ring
    /// cannot be reached, so no client can be checked.
    #[error("temporarily_unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// An unexpected failure inside the server (`server_error`).
    #[error("server_error")]
    Internal(#[source] anyhow::Error),
}

impl TokenError {
    /// The RFC 6749 error code that goes into the `error` member.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnauthorizedClient(_) => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::InvalidTarget(_) => "invalid_target",
            TokenError::Throttled { .. } => "temporarily_unavailable",
            TokenError::Unavailable(_) => "temporarily_unavailable",
            TokenError::Internal(_) => "server_error",
        }
    }

    /// A fixed, human-readable description that never reveals whether a
    /// client exists (RFC 6749 §5.2 `error_description`).
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(d)
            | TokenError::InvalidGrant(d)
            | TokenError::UnauthorizedClient(d)
            | TokenError::InvalidScope(d)
            | TokenError::InvalidTarget(d) => d,
            TokenError::InvalidClient(_) => "client authentication failed",
            TokenError::UnsupportedGrantType => "the grant type is not supported",
            TokenError::Throttled { .. } => "too many failed attempts; retry later",
            TokenError::Unavailable(_) => "the server cannot check clients right now; retry later",
            TokenError::Internal(_) => "internal server error",
        }
    }
}

/// Why client authentication failed. It goes to the log and, in sandbox mode
/// only, into the description; production responses never carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No client has this id.
    UnknownClient,
    /// The secret matches none of the client's live secrets.
    WrongSecret,
    /// The client exists but is disabled.
    Disabled,
    /// The client may not authenticate with the method it used.
    MethodNotAllowed,
    /// No credentials at all.
    NoCredentials,
    /// The client authenticated but may not call this endpoint
    /// (introspection without `--introspect`).
    NotAllowed,
}

impl AuthFailure {
    /// A precise description for sandbox responses and logs.
    pub fn describe(self) -> &'static str {
        match self {
            AuthFailure::UnknownClient => "unknown client",
            AuthFailure::WrongSecret => "wrong client secret",
            AuthFailure::Disabled => "client is disabled",
            AuthFailure::MethodNotAllowed => "authentication method not allowed for this client",
            AuthFailure::NoCredentials => "no client credentials",
            AuthFailure::NotAllowed => "the client may not call this endpoint",
        }
    }
}

/// The one mapping of storage failures: an unreachable database is
/// `temporarily_unavailable` (503), anything else an internal error.
impl From<super::store::StoreError> for TokenError {
    fn from(e: super::store::StoreError) -> Self {
        match e {
            super::store::StoreError::Unavailable(e) => TokenError::Unavailable(e),
            other => TokenError::Internal(other.into()),
        }
    }
}
