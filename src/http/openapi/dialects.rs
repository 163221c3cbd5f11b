//! Each dialect's token endpoint as an OpenAPI operation: its request
//! (form, JSON or brace form), its success body and its error set. The
//! operations are declared at the dialect's default path and re-keyed at
//! the path the router mounts it at ([`DialectDocs`] is looked up by
//! [`DialectKind::default_path`]).

use utoipa::{OpenApi, ToSchema};

use crate::http::dialect::DialectKind;

use super::responses::{FegoraErrors, PaymeErrors, StandardTokenErrors};
use super::schemas::PaymeAuthorization;

/// The grants ficha knows.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.3 (public clients such as Fegora's `apiApp`).
    Password,
    /// RFC 6749 §6.
    RefreshToken,
}

/// The one grant of the client-credentials-only dialects.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ClientCredentials {
    /// RFC 6749 §4.4.
    ClientCredentials,
}

/// An RFC 6749 token request (form-encoded). `client_id` may stand beside
/// a Basic header only if it names the same client; `client_secret` in the
/// body is `client_secret_post`, never together with Basic. A repeated
/// parameter is `invalid_request`; unknown ones are ignored.
#[derive(ToSchema)]
pub struct TokenForm {
    /// The grant.
    pub grant_type: GrantType,
    /// The client (required without Basic).
    #[schema(required = false)]
    pub client_id: String,
    /// The secret, for clients allowed `client_secret_post`.
    #[schema(required = false)]
    pub client_secret: String,
    /// Space-separated scopes; omitted: the client's default scopes.
    #[schema(required = false)]
    pub scope: String,
    /// RFC 8707 resource the token is for: the client's audience or one it may ask for.
    #[schema(required = false)]
    pub audience: String,
    /// The resource owner (password grant).
    #[schema(required = false)]
    pub username: String,
    /// Their password (password grant).
    #[schema(required = false)]
    pub password: String,
    /// The refresh token (refresh_token grant).
    #[schema(required = false)]
    pub refresh_token: String,
}

/// RFC 6749 §5.1 success body.
#[derive(ToSchema)]
pub struct StandardToken {
    /// An RFC 9068 JWT (`typ: at+jwt`), ES256 unless the client is set to RS256.
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    /// Password and refresh_token grants only; opaque, rotated on use.
    pub refresh_token: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// `Bearer`.
    pub token_type: String,
}

/// Nequi's body: empty, `{}`, a form or JSON; `grant_type` may come in the
/// query string instead.
#[derive(ToSchema)]
pub struct NequiTokenBody {
    /// `client_credentials`.
    #[schema(required = false)]
    pub grant_type: ClientCredentials,
}

/// Nequi's success body.
#[derive(ToSchema)]
pub struct NequiToken {
    /// The JWT.
    pub access_token: String,
    /// Seconds (3600, their documented lifetime).
    pub expires_in: i64,
    /// `Bearer`.
    pub token_type: String,
}

/// Peinau's parameters (form or JSON; the brace form carries the same).
#[derive(ToSchema)]
pub struct PeinauTokenBody {
    /// `client_credentials`.
    pub grant_type: ClientCredentials,
    /// Sealed into the token (claim `enc_identifier`), never in clear; at most 255 bytes.
    #[schema(required = false)]
    pub identifier: String,
}

/// Peinau's success body.
#[derive(ToSchema)]
pub struct PeinauToken {
    /// Granted scopes (often empty).
    pub scope: String,
    /// `Bearer`.
    pub token_type: String,
    /// The JWT (RS256 for the sandbox seed).
    pub access_token: String,
    /// The absolute expiry in epoch seconds, as Peinau's own is.
    pub expires_in: i64,
}

/// Pay-me's request (`client_secret_post` in JSON).
#[derive(ToSchema)]
pub struct PaymeTokenRequest {
    /// `authorize`.
    #[schema(pattern = "^authorize$")]
    pub action: String,
    /// `client_credentials`.
    pub grant_type: ClientCredentials,
    /// The token's `aud`: one the client may ask for.
    pub audience: String,
    /// The client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Space-separated; must include `create:token`.
    pub scope: String,
}

/// Pay-me's success body.
#[derive(ToSchema)]
pub struct PaymeToken {
    /// `authorize`.
    pub action: String,
    /// true.
    pub success: bool,
    /// The JWT.
    pub access_token: String,
    /// Granted scopes.
    pub scope: String,
    /// Seconds.
    pub expires_in: i64,
    /// `Bearer`.
    pub token_type: String,
    /// Status `00`, "Access Token creado".
    pub authorization: PaymeAuthorization,
}

/// Fegora's grants.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FegoraGrant {
    /// The customer's tax id and password.
    Password,
    /// A refresh token from an earlier answer.
    RefreshToken,
}

/// Fegora's form.
#[derive(ToSchema)]
pub struct FegoraTokenForm {
    /// The grant.
    pub grant_type: FegoraGrant,
    /// `apiApp`: a public client, no secret.
    pub client_id: String,
    /// The customer's tax id (password grant).
    #[schema(required = false)]
    pub username: String,
    /// Their password (password grant).
    #[schema(required = false)]
    pub password: String,
    /// The refresh token (refresh_token grant).
    #[schema(required = false)]
    pub refresh_token: String,
}

/// Fegora's (OWIN) success body.
#[derive(ToSchema)]
pub struct FegoraToken {
    /// The JWT.
    pub access_token: String,
    /// `bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
    /// Opaque, rotated on every use.
    pub refresh_token: Option<String>,
    /// The client.
    #[schema(rename = "as:client_id")]
    pub as_client_id: String,
    /// The user (password grant).
    #[schema(rename = "userName")]
    pub user_name: Option<String>,
    /// RFC 1123 date.
    #[schema(rename = ".issued")]
    pub issued: String,
    /// RFC 1123 date.
    #[schema(rename = ".expires")]
    pub expires: String,
}

/// The dialects' operations, at their default paths.
#[derive(OpenApi)]
#[openapi(paths(payvalida_token, nequi_token, peinau_token, payme_token, fegora_token))]
pub struct DialectDocs;

const MALFORMED_NOTE: &str = "In sandbox mode a client's fault may alter the answer \
    (`ficha sandbox fault set`, `POST /sandbox/faults`): an error status in this dialect's \
    shape, a delay, a spoiled token, or (`malformed-json`) a 200 whose body is cut short.";

/// Payválida (standard OAuth2): client credentials, RFC 6749 §4.4.
#[utoipa::path(
    post,
    path = DialectKind::Payvalida.default_path(),
    operation_id = "payvalida_token",
    tag = "token",
    description = MALFORMED_NOTE,
    request_body(content((TokenForm = "application/x-www-form-urlencoded",
        example = json!({"grant_type": "client_credentials", "scope": "transaction"})))),
    security(("payvalida_basic" = []), ()),
    responses(
        (status = 200, description = "A token (RFC 6749 §5.1).", body = StandardToken,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        StandardTokenErrors,
    )
)]
pub fn payvalida_token() {}

/// Nequi: client credentials, `grant_type` in the query string or the body.
#[utoipa::path(
    post,
    path = DialectKind::Nequi.default_path(),
    operation_id = "nequi_token",
    tag = "token",
    description = MALFORMED_NOTE,
    params(("grant_type" = Option<ClientCredentials>, Query, description = "Their documented place for `client_credentials`.")),
    request_body(content(
        (NequiTokenBody = "application/x-www-form-urlencoded"),
        (NequiTokenBody = "application/json", example = json!({}))
    )),
    security(("nequi_basic" = []), ()),
    responses(
        (status = 200, description = "A token, 3600 s.", body = NequiToken,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        StandardTokenErrors,
    )
)]
pub fn nequi_token() {}

/// Falabella/FIF Peinau: client credentials with an optional `identifier`.
#[utoipa::path(
    post,
    path = DialectKind::Peinau.default_path(),
    operation_id = "peinau_token",
    tag = "token",
    description = MALFORMED_NOTE,
    request_body(content(
        (PeinauTokenBody = "application/x-www-form-urlencoded",
            example = json!({"grant_type": "client_credentials", "identifier": "123456789"})),
        (PeinauTokenBody = "application/json"),
        (String = "text/plain", example = json!("{grant_type=client_credentials, identifier=123456789}"))
    )),
    security(("peinau_basic" = []), ()),
    responses(
        (status = 200, description = "A token; `expires_in` is an absolute time.", body = PeinauToken,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        StandardTokenErrors,
    )
)]
pub fn peinau_token() {}

/// Pay-me/Alignet: JSON with the secret in it; the scope must include `create:token`.
#[utoipa::path(
    post,
    path = DialectKind::Payme.default_path(),
    operation_id = "payme_token",
    tag = "token",
    description = MALFORMED_NOTE,
    params(("ALG-API-VERSION" = Option<String>, Header, description = "Documented by Pay-me; accepted, not required.")),
    request_body(content((PaymeTokenRequest = "application/json", example = json!({
        "action": "authorize", "grant_type": "client_credentials", "audience": "https://api.example",
        "client_id": "your_client_id", "client_secret": "your_client_secret",
        "scope": "create:token post:charges"
    })))),
    responses(
        (status = 200, description = "A token in Pay-me's envelope.", body = PaymeToken,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        PaymeErrors,
    )
)]
pub fn payme_token() {}

/// Fegora (OWIN): password and refresh_token grants for a public client.
#[utoipa::path(
    post,
    path = DialectKind::Fegora.default_path(),
    operation_id = "fegora_token",
    tag = "token",
    description = MALFORMED_NOTE,
    request_body(content((FegoraTokenForm = "application/x-www-form-urlencoded", example = json!({
        "grant_type": "password", "client_id": "apiApp", "username": "25365421", "password": "{contrasenia}"
    })))),
    responses(
        (status = 200, description = "A token and a refresh token.", body = FegoraToken,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
        FegoraErrors,
    )
)]
pub fn fegora_token() {}
