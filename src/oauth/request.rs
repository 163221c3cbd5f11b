//! From the raw bytes of a token request to a typed [`TokenRequest`]: the
//! form decoding that refuses repeated parameters (RFC 6749 §3.2), the two
//! readings of HTTP Basic client credentials (RFC 6749 §2.3.1), and the
//! decision between `invalid_request` and `unsupported_grant_type`.

use std::borrow::Cow;

use base64::Engine as _;
use secrecy::SecretString;

use super::client::{AuthMethod, ClientId, GrantType};
use super::error::{AuthFailure, TokenError};
use super::scope::ScopeSet;

/// A request's parameters by name. hashbrown's hasher (foldhash, seeded per
/// process) rather than std's SipHash: a token request looks up nine names,
/// and hashing them took about 1 % of its CPU (BENCHMARKS.md).
pub type Params = hashbrown::HashMap<String, String>;

/// Decodes an `application/x-www-form-urlencoded` body into a map, refusing
/// any parameter sent more than once (RFC 6749 §3.2: "Request and response
/// parameters MUST NOT be included more than once").
pub fn parse_form(body: &[u8]) -> Result<Params, TokenError> {
    let mut map = Params::default();
    for (k, v) in form_urlencoded::parse(body) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(TokenError::InvalidRequest("a parameter is repeated"));
        }
    }
    Ok(map)
}

/// A token request's parameters before any validation, all optional.
#[derive(Debug, Default)]
pub struct RawTokenRequest {
    /// `Authorization` header value, when one was sent.
    pub authorization: Option<String>,
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `client_id` in the body.
    pub client_id: Option<String>,
    /// `client_secret` in the body.
    pub client_secret: Option<SecretString>,
    /// `scope`.
    pub scope: Option<String>,
    /// `username` (password grant).
    pub username: Option<String>,
    /// `password` (password grant).
    pub password: Option<SecretString>,
    /// `refresh_token` (refresh grant).
    pub refresh_token: Option<SecretString>,
    /// `audience`, for dialects that let a client choose it.
    pub audience: Option<String>,
}

impl RawTokenRequest {
    /// Takes the standard parameters out of a decoded form.
    pub fn from_form(mut form: Params, authorization: Option<String>) -> Self {
        RawTokenRequest {
            authorization,
            grant_type: form.remove("grant_type"),
            client_id: form.remove("client_id"),
            client_secret: form.remove("client_secret").map(SecretString::from),
            scope: form.remove("scope"),
            username: form.remove("username"),
            password: form.remove("password").map(SecretString::from),
            refresh_token: form.remove("refresh_token").map(SecretString::from),
            audience: form.remove("audience"),
        }
    }
}

/// One way of reading the presented client credentials.
#[derive(Debug)]
pub struct Candidate {
    /// The client id.
    pub id: ClientId,
    /// The presented secret.
    pub secret: SecretString,
}

/// The client authentication a request carries.
#[derive(Debug)]
pub enum Credentials {
    /// Basic or body secret: one or two readings of (id, secret), tried in order.
    Secret {
        /// Which method the client used.
        method: AuthMethod,
        /// The readings, at most two, the RFC reading first.
        candidates: Vec<Candidate>,
    },
    /// Only a `client_id`, no secret: a public client (RFC 6749 §2.1).
    Public(ClientId),
}

impl Credentials {
    /// The client id of the first reading, for logs and throttling.
    pub fn client_id(&self) -> &ClientId {
        match self {
            Credentials::Secret { candidates, .. } => &candidates[0].id,
            Credentials::Public(id) => id,
        }
    }
}

/// The grant-specific part of a token request.
#[derive(Debug)]
pub enum Grant {
    /// RFC 6749 §4.4.2.
    ClientCredentials,
    /// RFC 6749 §4.3.2.
    Password {
        /// The resource owner's username.
        username: String,
        /// The resource owner's password.
        password: SecretString,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// The presented refresh token.
        refresh_token: SecretString,
    },
}

impl Grant {
    /// The wire name of the grant type.
    pub fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => GrantType::ClientCredentials.as_str(),
            Grant::Password { .. } => GrantType::Password.as_str(),
            Grant::RefreshToken { .. } => GrantType::RefreshToken.as_str(),
        }
    }
}

/// A typed, structurally valid token request.
#[derive(Debug)]
pub struct TokenRequest {
    /// The client authentication.
    pub credentials: Credentials,
    /// The grant.
    pub grant: Grant,
    /// The requested scope; `None` when the parameter was omitted.
    pub scope: Option<ScopeSet>,
    /// A requested audience (RFC 8707 §2 in spirit); it must be one the
    /// client may ask for.
    pub audience: Option<String>,
    /// The token lifetime the caller's wire format documents, in seconds:
    /// used when the client sets none, and the longest production allows.
    /// `None` means [`DEFAULT_TTL`](super::DEFAULT_TTL).
    pub lifetime: Option<u32>,
    /// Private claims (RFC 7519 §4.3) to carry in the token, such as a value
    /// sealed for the operator; registered claim names are refused.
    pub extra_claims: serde_json::Map<String, serde_json::Value>,
    /// The dialect whose path the request came in on (set by the HTTP
    /// edge); the client must be bound to it. `None` checks nothing.
    pub dialect: Option<&'static str>,
}

impl TryFrom<RawTokenRequest> for TokenRequest {
    type Error = TokenError;

    fn try_from(raw: RawTokenRequest) -> Result<Self, TokenError> {
        let grant_type = raw
            .grant_type
            .as_deref()
            .filter(|g| !g.is_empty())
            .ok_or(TokenError::InvalidRequest("grant_type is missing"))?;
        let grant_type: GrantType = grant_type
            .parse()
            .map_err(|_| TokenError::UnsupportedGrantType)?;
        let credentials = credentials(
            raw.authorization.as_deref(),
            raw.client_id.as_deref(),
            raw.client_secret,
        )?;
        let grant = match grant_type {
            GrantType::ClientCredentials => Grant::ClientCredentials,
            GrantType::Password => Grant::Password {
                username: raw
                    .username
                    .ok_or(TokenError::InvalidRequest("username is missing"))?,
                password: raw
                    .password
                    .ok_or(TokenError::InvalidRequest("password is missing"))?,
            },
            GrantType::RefreshToken => Grant::RefreshToken {
                refresh_token: raw
                    .refresh_token
                    .ok_or(TokenError::InvalidRequest("refresh_token is missing"))?,
            },
        };
        // An empty `scope=` is read as an omitted one: several providers'
        // clients always send the parameter.
        let scope = match raw.scope.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(
                ScopeSet::parse(s)
                    .map_err(|_| TokenError::InvalidScope("the scope is malformed"))?,
            ),
        };
        Ok(TokenRequest {
            credentials,
            grant,
            scope,
            // Like an empty scope, an empty audience is an omitted one.
            audience: raw.audience.filter(|a| !a.trim().is_empty()),
            lifetime: None,
            extra_claims: serde_json::Map::new(),
            dialect: None,
        })
    }
}

/// Combines the Authorization header and the body credentials, refusing two
/// methods at once (RFC 6749 §2.3: "MUST NOT use more than one authentication
/// method in each request") and a body id that differs from the Basic id.
pub fn credentials(
    authorization: Option<&str>,
    body_id: Option<&str>,
    body_secret: Option<SecretString>,
) -> Result<Credentials, TokenError> {
    match (authorization, body_secret) {
        (Some(_), Some(_)) => Err(TokenError::InvalidRequest(
            "use either the Authorization header or client_secret in the body, not both",
        )),
        (Some(header), None) => {
            let mut candidates = parse_basic(header)?;
            if let Some(body_id) = body_id {
                candidates.retain(|c| c.id.as_ref() == body_id);
                if candidates.is_empty() {
                    return Err(TokenError::InvalidRequest(
                        "client_id in the body differs from the Authorization header",
                    ));
                }
            }
            Ok(Credentials::Secret {
                method: AuthMethod::ClientSecretBasic,
                candidates,
            })
        }
        (None, Some(secret)) => {
            let id = body_id.ok_or(TokenError::InvalidRequest("client_id is missing"))?;
            let id = ClientId::parse(id)
                .map_err(|_| TokenError::InvalidRequest("client_id is malformed"))?;
            Ok(Credentials::Secret {
                method: AuthMethod::ClientSecretPost,
                candidates: vec![Candidate { id, secret }],
            })
        }
        (None, None) => match body_id {
            Some(id) => ClientId::parse(id)
                .map(Credentials::Public)
                .map_err(|_| TokenError::InvalidRequest("client_id is malformed")),
            None => Err(TokenError::InvalidClient(AuthFailure::NoCredentials)),
        },
    }
}

/// Parses `Basic base64(id ":" secret)` into its readings.
///
/// RFC 6749 §2.3.1 says id and secret are form-urlencoded before base64, but
/// most real clients skip that step. Both readings are returned (the encoded
/// one first) when they differ; a value with no `%` or `+` reads the same
/// either way, so it yields a single candidate.
pub fn parse_basic(header: &str) -> Result<Vec<Candidate>, TokenError> {
    const MALFORMED: TokenError =
        TokenError::InvalidRequest("the Authorization header is not valid Basic");
    let (scheme, value) = header.trim().split_once(' ').ok_or(MALFORMED)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(MALFORMED);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| MALFORMED)?;
    let decoded = String::from_utf8(decoded).map_err(|_| MALFORMED)?;
    let (raw_id, raw_secret) = decoded.split_once(':').ok_or(MALFORMED)?;

    let rfc = match (form_decode(raw_id), form_decode(raw_secret)) {
        (Some(id), Some(secret)) => ClientId::parse(&id).ok().map(|id| (id, secret)),
        _ => None,
    };
    // The raw reading is a second candidate only when it differs: `%` not
    // followed by two hex digits decodes to itself, so `a:%` reads the same
    // both ways, and one secret must never be verified twice.
    let raw_differs = rfc
        .as_ref()
        .is_none_or(|(id, secret)| id.as_ref() != raw_id || secret != raw_secret);
    let mut candidates = Vec::with_capacity(2);
    if let Some((id, secret)) = rfc {
        candidates.push(Candidate {
            id,
            secret: secret.into(),
        });
    }
    if raw_differs {
        if let Ok(id) = ClientId::parse(raw_id) {
            candidates.push(Candidate {
                id,
                secret: raw_secret.to_owned().into(),
            });
        }
    }
    if candidates.is_empty() {
        return Err(MALFORMED);
    }
    Ok(candidates)
}

/// Rewrites `Basic id:secret`, sent without base64 as some providers'
/// documentation shows it, into the RFC 7617 form `Basic base64(id:secret)`.
///
/// The base64 alphabet has no `:`, so a credential that holds one cannot be
/// base64 and the reading is unambiguous; any other header is returned as is.
pub fn encode_raw_basic(header: &str) -> Cow<'_, str> {
    let Some((scheme, value)) = header.trim().split_once(' ') else {
        return Cow::Borrowed(header);
    };
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("basic") && value.contains(':') {
        Cow::Owned(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        ))
    } else {
        Cow::Borrowed(header)
    }
}

/// `application/x-www-form-urlencoded` decoding of one value, `None` when it
/// does not decode to UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn basic(raw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn readings(raw: &str) -> Vec<(String, String)> {
        parse_basic(&basic(raw))
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.id.as_ref().to_owned(),
                    c.secret.expose_secret().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn payvalidas_documented_header_reads_as_payvalida_and_client_secret() {
        let c = parse_basic("Basic cGF5dmFsaWRhOmNsaWVudF9zZWNyZXQ=").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id.as_ref(), "payvalida");
        assert_eq!(c[0].secret.expose_secret(), "client_secret");
    }

    #[test]
    fn an_encoded_value_yields_the_rfc_reading_first_then_the_plain_one() {
        assert_eq!(
            readings("a%3Ab:s%2Bt+u"),
            vec![
                ("a:b".into(), "s+t u".into()),
                ("a%3Ab".into(), "s%2Bt+u".into())
            ]
        );
    }

    #[test]
    fn a_value_that_decodes_to_itself_reads_once() {
        // Found by the basic_header fuzz target: `%` alone decodes to `%`.
        assert_eq!(readings("a:%"), vec![("a".into(), "%".into())]);
        assert_eq!(readings("a:100%"), vec![("a".into(), "100%".into())]);
        assert_eq!(
            readings("a:%zz+"),
            vec![("a".into(), "%zz ".into()), ("a".into(), "%zz+".into())]
        );
    }

    #[test]
    fn a_secret_with_a_colon_keeps_everything_after_the_first_colon() {
        assert_eq!(
            readings("id:se:cret"),
            vec![("id".into(), "se:cret".into())]
        );
    }

    #[test]
    fn malformed_basic_headers_are_invalid_requests() {
        for h in [
            "Basic",
            "Basic !!!",
            "Bearer abc",
            &basic("no-colon"),
            &basic(":secret"),
        ] {
            assert!(
                matches!(parse_basic(h), Err(TokenError::InvalidRequest(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn an_unencoded_basic_credential_reads_as_its_base64_form() {
        let raw = "Basic 641281901508761220281:B8WKRXMiWHHrMCectt9Rg3ju4Y8GNheEa50gx6365sBV";
        let c = parse_basic(&encode_raw_basic(raw)).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id.as_ref(), "641281901508761220281");
        assert_eq!(
            c[0].secret.expose_secret(),
            "B8WKRXMiWHHrMCectt9Rg3ju4Y8GNheEa50gx6365sBV"
        );
        let encoded = basic("a:b");
        assert_eq!(encode_raw_basic(&encoded), encoded.as_str());
        assert_eq!(encode_raw_basic("Bearer x:y"), "Bearer x:y");
    }

    #[test]
    fn an_empty_audience_is_an_omitted_one() {
        let raw = RawTokenRequest {
            authorization: Some(basic("a:b")),
            grant_type: Some("client_credentials".into()),
            audience: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(TokenRequest::try_from(raw).unwrap().audience, None);
    }

    #[test]
    fn a_repeated_parameter_is_an_invalid_request() {
        assert!(matches!(
            parse_form(b"grant_type=client_credentials&scope=a&scope=b"),
            Err(TokenError::InvalidRequest(_))
        ));
        let form = parse_form(b"grant_type=client_credentials&scope=a+b&x=%41").unwrap();
        assert_eq!(form["scope"], "a b");
        assert_eq!(form["x"], "A");
    }

    #[test]
    fn basic_and_body_secret_together_are_refused() {
        let r = credentials(Some(&basic("a:b")), None, Some("b".to_owned().into()));
        assert!(matches!(r, Err(TokenError::InvalidRequest(_))));
    }

    #[test]
    fn a_body_client_id_must_equal_the_basic_id() {
        let r = credentials(Some(&basic("a:b")), Some("c"), None);
        assert!(matches!(r, Err(TokenError::InvalidRequest(_))));
        let r = credentials(Some(&basic("a:b")), Some("a"), None).unwrap();
        assert_eq!(r.client_id().as_ref(), "a");
    }

    #[test]
    fn an_unknown_grant_type_is_unsupported_and_a_missing_one_is_invalid() {
        let raw = RawTokenRequest {
            grant_type: Some("urn:x".into()),
            ..Default::default()
        };
        assert!(matches!(
            TokenRequest::try_from(raw),
            Err(TokenError::UnsupportedGrantType)
        ));
        let raw = RawTokenRequest::default();
        assert!(matches!(
            TokenRequest::try_from(raw),
            Err(TokenError::InvalidRequest(_))
        ));
    }
}
