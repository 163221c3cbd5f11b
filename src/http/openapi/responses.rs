//! The error responses each kind of endpoint can answer, with their bodies
//! and headers, as [`IntoResponses`] sets that the operations list after
//! their success response. They mirror `http::errors` (statuses, headers)
//! and each dialect's `render_error`.

use std::collections::BTreeMap;

use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::IntoResponses;

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub const NO_STORE: &[(&str, &str)] = &[
    (
        "Cache-Control",
        "`no-store`: token responses are never cached.",
    ),
    ("Pragma", "`no-cache`."),
];
/// RFC 6749 §5.2 Basic challenge of an `invalid_client` refusal.
const BASIC_CHALLENGE: (&str, &str) = (
    "WWW-Authenticate",
    "`Basic realm=\"ficha\"`: the client failed to authenticate.",
);
/// When to try again after a 429 or 503.
pub const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before retrying.");

/// A JSON response with `schema` (a component name) and these headers.
pub fn json(description: &str, schema: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let mut builder = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name(schema))),
    );
    for (name, text) in headers {
        let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
        header.description = Some((*text).to_owned());
        builder = builder.header(*name, header);
    }
    RefOr::T(builder.build())
}

/// `headers` plus the no-store pair.
fn with_no_store<'a>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    NO_STORE.iter().chain(headers).copied().collect()
}

/// The refusals of a client-authenticating form endpoint, in `schema`'s
/// shape: the RFC 6749 statuses (SPEC §3) and the server's own.
fn oauth_errors(schema: &str, unauthorized: Option<u16>) -> BTreeMap<String, RefOr<Response>> {
    let mut map = BTreeMap::new();
    let mut add = |status: u16, text: &str, extra: &[(&str, &str)]| {
        map.insert(
            status.to_string(),
            json(text, schema, &with_no_store(extra)),
        );
    };
    add(
        400,
        "`invalid_request` (missing, repeated or malformed parameter, wrong Content-Type, \
         malformed Basic header, two client authentications), `invalid_grant`, \
         `unauthorized_client`, `unsupported_grant_type`, `invalid_scope` or `invalid_target`.",
        &[],
    );
    if let Some(status) = unauthorized {
        add(
            status,
            "`invalid_client`: unknown client, wrong secret, disabled client or an \
             authentication method the client may not use (indistinguishable).",
            &[BASIC_CHALLENGE],
        );
    }
    add(413, "`invalid_request`: the body is over 16 KiB.", &[]);
    add(
        429,
        "`temporarily_unavailable`: too many failed authentications for this client id \
         or address (or a sandbox `status:429` fault).",
        &[RETRY_AFTER],
    );
    add(
        500,
        "`server_error`: an internal error (or a sandbox `status:500` fault).",
        &[],
    );
    add(
        503,
        "`temporarily_unavailable`: the database, the key ring or the hashing queue is \
         unavailable (or a sandbox `status:503` fault).",
        &[RETRY_AFTER],
    );
    map
}

/// The request timeout's answer, which only a sandbox `delay` fault longer
/// than it can provoke on a token endpoint: no body.
fn with_timeout(mut map: BTreeMap<String, RefOr<Response>>) -> BTreeMap<String, RefOr<Response>> {
    map.insert(
        "408".to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description(
                    "The 10-second request timeout ran out: in sandbox mode, a `delay` fault \
                     longer than it. No body.",
                )
                .build(),
        ),
    );
    map
}

/// Refusals of introspection and revocation: RFC 6749 §5.2 bodies.
pub struct StandardErrors;

impl IntoResponses for StandardErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        oauth_errors("OAuthError", Some(401))
    }
}

/// Refusals of the Payválida, Nequi and Peinau token endpoints: RFC 6749
/// §5.2 bodies.
pub struct StandardTokenErrors;

impl IntoResponses for StandardTokenErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        with_timeout(oauth_errors("OAuthError", Some(401)))
    }
}

/// Refusals of the Pay-me token endpoint: their envelope, 401 for bad
/// client credentials and 403 for what the client may not ask for.
pub struct PaymeErrors;

impl IntoResponses for PaymeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut map = with_timeout(oauth_errors("PaymeError", Some(401)));
        map.insert(
            "403".to_owned(),
            json(
                "`invalid_scope` (no `create:token`, or a scope not allowed), \
                 `invalid_target` or `unauthorized_client` (Pay-me code `03`).",
                "PaymeError",
                NO_STORE,
            ),
        );
        map
    }
}

/// Refusals of the Fegora token endpoint: OWIN answers every refusal with
/// 400, a failed client authentication included (`invalid_clientId`).
pub struct FegoraErrors;

impl IntoResponses for FegoraErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        with_timeout(oauth_errors("FegoraError", None))
    }
}

/// Refusals of `/sandbox/faults`: a malformed request, a body over the
/// limit, or a fault table that cannot be read or written.
pub struct SandboxErrors;

impl IntoResponses for SandboxErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "400".to_owned(),
                json(
                    "`invalid_request`: the body or a value in it is malformed.",
                    "OAuthError",
                    &[],
                ),
            ),
            (
                "413".to_owned(),
                json(
                    "`invalid_request`: the body is over 16 KiB.",
                    "OAuthError",
                    &[],
                ),
            ),
            (
                "503".to_owned(),
                json(
                    "`temporarily_unavailable`: the database cannot be reached.",
                    "OAuthError",
                    &[RETRY_AFTER],
                ),
            ),
        ])
    }
}
