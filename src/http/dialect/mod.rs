//! Provider dialects (SPEC §5): thin adapters at the HTTP edge, one file per
//! provider. Each holds its provider's facts (name, default path,
//! documented lifetime, body formats) and decodes its provider's token
//! request into the core's one [`TokenRequest`], then renders the core's
//! [`IssuedToken`] or error in its provider's shape; client authentication,
//! grants, scopes and minting stay in `oauth`, which learns only the
//! dialect's name (`TokenRequest::dialect`, checked against the client's
//! allowed dialects). The router mounts each dialect at its configured path
//! ([`DialectPaths`]).

mod fegora;
mod nequi;
mod payme;
mod payvalida;
mod peinau;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use axum::http::HeaderMap;
use axum::response::Response;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::keys::ClaimsKeys;
use crate::oauth::{parse_form, IssuedToken, Params, TokenError, TokenRequest};
use crate::sandbox::BodyFormat;

use super::errors::{no_store, ErrorResponse};

/// The dialects ficha speaks, chosen by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DialectKind {
    /// Payválida: standard OAuth2 (SPEC §3).
    Payvalida,
    /// Nequi (Conecta Nequi).
    Nequi,
    /// Falabella/FIF "Peinau".
    Peinau,
    /// Pay-me/Alignet.
    Payme,
    /// Fegora (OWIN password and refresh_token grants).
    Fegora,
}

impl DialectKind {
    /// Every dialect.
    pub const ALL: [DialectKind; 5] = [
        DialectKind::Payvalida,
        DialectKind::Nequi,
        DialectKind::Peinau,
        DialectKind::Payme,
        DialectKind::Fegora,
    ];

    /// The adapter that speaks this dialect, which holds its facts: the one
    /// place a kind is matched to its provider.
    pub fn adapter(self) -> &'static dyn Dialect {
        match self {
            DialectKind::Payvalida => &payvalida::Payvalida,
            DialectKind::Nequi => &nequi::Nequi,
            DialectKind::Peinau => &peinau::Peinau,
            DialectKind::Payme => &payme::Payme,
            DialectKind::Fegora => &fegora::Fegora,
        }
    }

    /// The dialect's name ([`Dialect::name`]).
    pub fn as_str(self) -> &'static str {
        self.adapter().name()
    }

    /// The dialect's default path ([`Dialect::default_path`]).
    pub fn default_path(self) -> &'static str {
        self.adapter().default_path()
    }

    /// The provider's documented lifetime ([`Dialect::documented_lifetime`]).
    pub fn documented_lifetime(self) -> Option<u32> {
        self.adapter().documented_lifetime()
    }
}

impl fmt::Display for DialectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DialectKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DialectKind::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown dialect {s:?}: use payvalida, nequi, peinau, payme or fegora"
                )
            })
    }
}

/// Where each dialect is mounted; `None` turns a dialect off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectPaths(BTreeMap<DialectKind, Option<String>>);

impl Default for DialectPaths {
    fn default() -> Self {
        DialectPaths(
            DialectKind::ALL
                .into_iter()
                .map(|d| (d, Some(d.default_path().to_owned())))
                .collect(),
        )
    }
}

impl DialectPaths {
    /// The defaults with `overrides` applied, in order, as `(dialect, path)`;
    /// a path of `off` turns the dialect off. Each path must be a literal
    /// path (`valid_path`), not a fixed route's ([`paths::FIXED`], which
    /// the router mounts from the same constants) and not another dialect's:
    /// the only clashes axum refuses at start-up, so the router never meets
    /// a path it cannot mount.
    ///
    /// [`paths::FIXED`]: super::paths::FIXED
    pub fn with_overrides<'a>(
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<Self> {
        let mut paths = DialectPaths::default();
        for (name, path) in overrides {
            let kind: DialectKind = name.parse()?;
            let path = path.trim();
            let path = if path.eq_ignore_ascii_case("off") {
                None
            } else {
                Some(valid_path(kind, path)?)
            };
            paths.0.insert(kind, path);
        }
        let mut seen: HashMap<&str, DialectKind> = HashMap::new();
        for (kind, path) in paths.mounted() {
            anyhow::ensure!(
                !super::paths::is_reserved(path),
                "the {kind} dialect cannot be mounted at {path}: another route uses it"
            );
            if let Some(other) = seen.insert(path, kind) {
                anyhow::bail!("the {other} and {kind} dialects are both mounted at {path}");
            }
        }
        Ok(paths)
    }

    /// The mounted dialects and their paths.
    pub fn mounted(&self) -> impl Iterator<Item = (DialectKind, &str)> {
        self.0
            .iter()
            .filter_map(|(k, p)| p.as_deref().map(|p| (*k, p)))
    }

    /// Where `kind` is mounted, if it is.
    pub fn path(&self, kind: DialectKind) -> Option<&str> {
        self.0.get(&kind).and_then(|p| p.as_deref())
    }
}

/// A literal route path: `/`-separated non-empty segments of RFC 3986
/// unreserved characters, so that no path parameter or wildcard syntax can
/// reach the router.
fn valid_path(kind: DialectKind, path: &str) -> anyhow::Result<String> {
    let ok = path.len() > 1
        && path.starts_with('/')
        && path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
    anyhow::ensure!(
        ok,
        "invalid path {path:?} for the {kind} dialect: use /segment/segment with letters, digits and - . _ ~ (or off)"
    );
    Ok(path.to_owned())
}

/// A token request as it arrived, before any dialect reads it.
#[derive(Debug, Clone, Copy)]
pub struct DialectRequest<'a> {
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body, at most [`MAX_BODY`](super::extractors::MAX_BODY) bytes.
    pub body: &'a [u8],
}

/// What a dialect may use while decoding, besides the request.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext<'a> {
    /// Seals values a token carries for the operator only.
    pub claims: &'a ClaimsKeys,
}

/// One provider's token endpoint: its facts and its wire format.
pub trait Dialect: Send + Sync {
    /// Which dialect this is.
    fn kind(&self) -> DialectKind;

    /// The dialect's name, as in config keys, client `dialects` and the
    /// `dialect` metric label.
    fn name(&self) -> &'static str;

    /// The default path: the provider's own path under a prefix naming it
    /// (the standard endpoint keeps `/oauth2/token`).
    fn default_path(&self) -> &'static str;

    /// The token lifetime the provider documents, when it is not the
    /// server's default: the default for its clients and, in production,
    /// the longest allowed.
    fn documented_lifetime(&self) -> Option<u32> {
        None
    }

    /// The body formats the dialect reads, in the order the sandbox's
    /// request log tries them when masking.
    fn body_formats(&self) -> &'static [BodyFormat];

    /// What a sandbox `malformed-json` body starts with before it is cut
    /// short: the opening of the provider's success object.
    fn malformed_json_prefix(&self) -> &'static str {
        "{"
    }

    /// Reads the provider's request into the core's request. Every failure
    /// is an RFC 6749 error, which [`Dialect::render_error`] then renders in
    /// the provider's shape.
    fn decode(
        &self,
        req: &DialectRequest<'_>,
        ctx: &DecodeContext<'_>,
    ) -> Result<TokenRequest, TokenError>;

    /// The provider's success response.
    fn render_token(&self, token: &IssuedToken) -> Response;

    /// The provider's error response; by default the RFC 6749 §5.2 shape,
    /// for providers that document none of their own. `client_id` is the
    /// client the request named, if the dialect got that far, for providers
    /// whose errors quote it.
    fn render_error(&self, error: &ErrorResponse, _client_id: Option<&str>) -> Response {
        error.render_with(error.standard_body())
    }
}

/// A JSON success body with `Cache-Control: no-store` (RFC 6749 §5.1).
pub(crate) fn json_no_store<T: Serialize>(body: T) -> Response {
    use axum::response::IntoResponse as _;
    let mut resp = axum::Json(body).into_response();
    no_store(&mut resp);
    resp
}

/// A JWT as a JSON string, written as it is. serde_json escapes a string a
/// byte at a time, about 10 instructions a byte, and a token is some 600
/// bytes of base64url and dots with nothing to escape; serde_json's reader
/// confirms that 8 bytes at a time, for a tenth of the cost (BENCHMARKS.md).
/// Anything else (a backslash, a quote, a control character: never in a
/// token ficha signs) is escaped as usual.
pub(crate) struct JwtJson(String);

impl JwtJson {
    pub(crate) fn new(jwt: &str) -> Self {
        let mut quoted = String::with_capacity(jwt.len() + 2);
        quoted.push('"');
        quoted.push_str(jwt);
        quoted.push('"');
        JwtJson(quoted)
    }

    fn jwt(&self) -> &str {
        self.0
            .get(1..self.0.len().saturating_sub(1))
            .unwrap_or_default()
    }
}

impl Serialize for JwtJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A backslash would read as an escape: the text would parse, as
        // another string.
        if !self.jwt().contains('\\') {
            if let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(&self.0) {
                return raw.serialize(serializer);
            }
        }
        serializer.serialize_str(self.jwt())
    }
}

/// The members of a JSON object in order, repeats kept, so that a repeated
/// parameter can be refused as RFC 6749 §3.2 requires of forms.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a JSON object of parameters: strings (numbers read as their text,
/// `null` as absent), none repeated. `None` when the body is not a JSON
/// object at all.
pub(crate) fn json_params(body: &[u8]) -> Option<Result<Params, TokenError>> {
    let Members(members) = serde_json::from_slice(body).ok()?;
    let mut map = Params::default();
    for (k, v) in members {
        let v = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Some(Err(TokenError::InvalidRequest(
                    "every parameter must be a string",
                )))
            }
        };
        if map.insert(k, v).is_some() {
            return Some(Err(TokenError::InvalidRequest("a parameter is repeated")));
        }
    }
    Some(Ok(map))
}

/// Reads a body that may be empty, a JSON object (`{}` included) or a form,
/// whatever its Content-Type says, as real clients of some providers send
/// all three.
pub(crate) fn lenient_params(body: &[u8]) -> Result<Params, TokenError> {
    if body.trim_ascii().is_empty() {
        return Ok(Params::default());
    }
    match json_params(body) {
        Some(params) => params,
        None if body.trim_ascii_start().starts_with(b"{") => Err(TokenError::InvalidRequest(
            "the body is neither a form nor a JSON object",
        )),
        None => parse_form(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_is_written_as_serde_json_writes_any_string() {
        for token in [
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln-_",
            "",
            "a\"b",
            "a\\\"b",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "ñandú",
        ] {
            assert_eq!(
                serde_json::to_string(&JwtJson::new(token)).unwrap(),
                serde_json::to_string(token).unwrap(),
                "{token:?}"
            );
        }
    }

    #[test]
    fn dialect_names_round_trip_and_unknown_ones_are_refused() {
        for d in DialectKind::ALL {
            assert_eq!(d.as_str().parse::<DialectKind>().unwrap(), d);
            assert_eq!(d.adapter().kind(), d);
            assert!(d.default_path().starts_with('/'), "{d}");
        }
        assert!("owin".parse::<DialectKind>().is_err());
    }

    #[test]
    fn paths_can_be_moved_or_turned_off_but_not_clash() {
        let p =
            DialectPaths::with_overrides([("nequi", "/custom/token"), ("payme", "off")]).unwrap();
        assert_eq!(p.path(DialectKind::Nequi), Some("/custom/token"));
        assert_eq!(p.path(DialectKind::Payme), None);
        assert_eq!(p.mounted().count(), 4);
        for bad in [
            [("nequi", "/oauth2/token")],
            [("nequi", "/metrics")],
            [("nequi", "/openapi.json")],
            [("nequi", "/oauth2/introspect")],
            [("nequi", "/auth/verify")],
            [("nequi", "relative")],
            [("nequi", "/{id}")],
            [("nequi", "/a//b")],
            [("nequi", "/")],
            [("mystery", "/x")],
        ] {
            assert!(DialectPaths::with_overrides(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_dialect_can_shadow_a_fixed_route() {
        for path in crate::http::paths::FIXED {
            for kind in DialectKind::ALL {
                let err = DialectPaths::with_overrides([(kind.as_str(), path)])
                    .expect_err(path)
                    .to_string();
                assert!(
                    err.contains("another route uses it"),
                    "{kind} at {path}: {err}"
                );
            }
        }
        for path in [
            "/oauth2/introspect",
            "/oauth2/revoke",
            "/auth/verify",
            "/sandbox/faults",
        ] {
            assert!(crate::http::paths::is_reserved(path), "{path}");
        }
    }

    #[test]
    fn lenient_bodies_read_empty_json_and_form_alike() {
        assert!(lenient_params(b"").unwrap().is_empty());
        assert!(lenient_params(b" {} ").unwrap().is_empty());
        assert_eq!(
            lenient_params(br#"{"grant_type":"client_credentials"}"#).unwrap()["grant_type"],
            "client_credentials"
        );
        assert_eq!(
            lenient_params(b"grant_type=client_credentials").unwrap()["grant_type"],
            "client_credentials"
        );
        assert!(lenient_params(br#"{"a":"1","a":"2"}"#).is_err());
        assert!(lenient_params(br#"{"a":[1]}"#).is_err());
        assert!(lenient_params(b"{oops").is_err());
    }
}
