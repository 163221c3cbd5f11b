//! Schemas of the bodies the server reads and answers that no handler
//! builds from a struct of its own (error bodies, discovery documents,
//! forms parsed pair by pair). Each mirrors the code that writes or reads
//! it; the schemathesis run (`tests/schemathesis.sh`) checks every answer
//! against them, so a drift fails CI.

use utoipa::ToSchema;

/// The RFC 6749 §5.2 error codes ficha answers, plus RFC 8707's
/// `invalid_target` and the codes of a throttled or failing server.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// Malformed request (RFC 6749 §5.2).
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Bad username/password or refresh token.
    InvalidGrant,
    /// The client may not use this grant, dialect or introspection.
    UnauthorizedClient,
    /// A grant type the server does not know.
    UnsupportedGrantType,
    /// A scope the client may not ask for.
    InvalidScope,
    /// An audience the client may not ask for (RFC 8707 §2).
    InvalidTarget,
    /// Throttled, or the database or key ring is unavailable.
    TemporarilyUnavailable,
    /// An internal error (or a sandbox `status:500` fault).
    ServerError,
}

/// RFC 6749 §5.2 error body.
#[derive(ToSchema)]
pub struct OAuthError {
    /// The error code.
    pub error: OAuthErrorCode,
    /// A fixed, human-readable text; in production it never says whether a
    /// client exists.
    pub error_description: String,
}

/// Fegora's (ASP.NET OWIN) error body: the RFC 6749 codes, and
/// `invalid_clientId` for a client that is unknown or failed to
/// authenticate.
#[derive(ToSchema)]
pub struct FegoraError {
    /// `invalid_clientId` or an RFC 6749 code.
    #[schema(examples("invalid_clientId", "invalid_grant", "unsupported_grant_type"))]
    pub error: String,
    /// OWIN's wording for `invalid_clientId`, a fixed text otherwise.
    pub error_description: String,
}

/// Pay-me's message in one locale.
#[derive(ToSchema)]
pub struct PaymeMessage {
    /// Always `es_PE`.
    pub locale: String,
    /// The message.
    pub value: String,
}

/// Pay-me's status: `00` for success, `01`..`06` and `99` for errors.
#[derive(ToSchema)]
pub struct PaymeStatus {
    /// The status code.
    #[schema(pattern = "^[0-9]{2}$")]
    pub code: String,
    /// The message, in Spanish.
    pub message_ilgn: Vec<PaymeMessage>,
}

/// Pay-me's `meta` block.
#[derive(ToSchema)]
pub struct PaymeMeta {
    /// The status.
    pub status: PaymeStatus,
}

/// Pay-me's `authorization` block.
#[derive(ToSchema)]
pub struct PaymeAuthorization {
    /// Meta data.
    pub meta: PaymeMeta,
}

/// Pay-me's error body: their success envelope with `success: false`.
#[derive(ToSchema)]
pub struct PaymeError {
    /// Always `authorize`.
    #[schema(pattern = "^authorize$")]
    pub action: String,
    /// Always false.
    pub success: bool,
    /// The RFC 6749 code.
    pub error: OAuthErrorCode,
    /// A fixed text.
    pub error_description: String,
    /// Pay-me's status block with the error's code.
    pub authorization: PaymeAuthorization,
}

/// RFC 6750 §3.1 error codes of `/auth/verify`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BearerErrorCode {
    /// No, or an invalid, expired, revoked or foreign bearer token.
    InvalidToken,
    /// The token lacks a required scope.
    InsufficientScope,
    /// Revocations cannot be checked right now.
    TemporarilyUnavailable,
}

/// `/auth/verify`'s refusal body.
#[derive(ToSchema)]
pub struct BearerError {
    /// The error code.
    pub error: BearerErrorCode,
    /// A fixed text; never token data.
    pub error_description: String,
}

/// `/auth/verify`'s answer for a valid token.
#[derive(ToSchema)]
pub struct VerifiedToken {
    /// Always true.
    pub active: bool,
    /// The client the token was issued to.
    pub client_id: String,
    /// Its scopes, space-separated.
    pub scope: String,
}

/// RFC 7662 §2.2 introspection response: the claims of an active token,
/// or `{"active": false}` alone for anything else.
#[derive(ToSchema)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// Scopes, space-separated.
    pub scope: Option<String>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Audience.
    pub aud: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// Expiry, unix seconds.
    pub exp: Option<i64>,
    /// Issued at, unix seconds.
    pub iat: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
    /// Always `Bearer`.
    pub token_type: Option<String>,
}

/// An introspection or revocation request (RFC 7662 §2.1, RFC 7009
/// §2.1); the client authenticates with Basic or in the body.
#[derive(ToSchema)]
pub struct TokenLookupForm {
    /// The token.
    pub token: String,
    /// Ignored: ficha has one kind of token to look up.
    #[schema(required = false)]
    pub token_type_hint: String,
    /// The calling client (client_secret_post, or beside Basic).
    #[schema(required = false)]
    pub client_id: String,
    /// Its secret (client_secret_post).
    #[schema(required = false)]
    pub client_secret: String,
}

/// One published public key (RFC 7517 §4, RFC 7518 §6).
#[derive(ToSchema)]
pub struct Jwk {
    /// `EC` or `RSA`.
    pub kty: String,
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// Always `sig`.
    #[schema(rename = "use")]
    pub use_: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// EC curve (`P-256`).
    pub crv: Option<String>,
    /// EC x coordinate.
    pub x: Option<String>,
    /// EC y coordinate.
    pub y: Option<String>,
    /// RSA modulus.
    pub n: Option<String>,
    /// RSA exponent.
    pub e: Option<String>,
}

/// RFC 7517 §5 JWK Set: every key a live token may be signed with.
#[derive(ToSchema)]
pub struct JwkSet {
    /// The keys (next, active and retiring).
    pub keys: Vec<Jwk>,
}

/// RFC 8414 §2 authorization server metadata.
#[derive(ToSchema)]
pub struct Metadata {
    /// The issuer.
    pub issuer: String,
    /// The standard (Payválida) token endpoint.
    pub token_endpoint: String,
    /// The JWK Set.
    pub jwks_uri: String,
    /// RFC 7662 endpoint.
    pub introspection_endpoint: String,
    /// Client authentication methods at introspection.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7009 endpoint.
    pub revocation_endpoint: String,
    /// Client authentication methods at revocation.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Grants.
    pub grant_types_supported: Vec<String>,
    /// Empty: no authorization endpoint.
    pub response_types_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Token signing algorithms.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
}

/// `GET /health`.
#[derive(ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /health/ready`.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// Whether the database answered within two seconds.
    pub database: bool,
    /// Whether an ES256 key can sign.
    pub signing_key: bool,
}

/// `DELETE /sandbox/faults`'s answer.
#[derive(ToSchema)]
pub struct Cleared {
    /// How many faults were cleared.
    pub cleared: u64,
}
