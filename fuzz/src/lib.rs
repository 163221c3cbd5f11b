//! Input shapes shared by ficha's fuzz targets: token requests built from
//! `arbitrary` data, so that the fuzzer gets past the first parse (a known
//! parameter name, a grant type, a well-formed Basic header) as often as it
//! feeds plain garbage. Each shape renders to the bytes a client would send.

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The printable ASCII of RFC 6749 Appendix A (VSCHAR, `%x20-7E`) in `s`.
pub fn vschar(s: &str) -> String {
    s.chars().filter(|c| (' '..='~').contains(c)).collect()
}

/// RFC 6749 §2.3.1 / Appendix B: `application/x-www-form-urlencoded`.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `Basic base64(id ":" secret)`, each half form-urlencoded first when
/// `encode` (RFC 6749 §2.3.1), as-is otherwise (what most clients send).
pub fn basic(id: &str, secret: &str, encode: bool) -> String {
    let raw = if encode {
        format!("{}:{}", urlencode(id), urlencode(secret))
    } else {
        format!("{id}:{secret}")
    };
    format!("Basic {}", STANDARD.encode(raw))
}

/// A parameter name: mostly one a decoder reads, sometimes anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Key {
    /// `grant_type`
    GrantType,
    /// `client_id`
    ClientId,
    /// `client_secret`
    ClientSecret,
    /// `scope`
    Scope,
    /// `username`
    Username,
    /// `password`
    Password,
    /// `refresh_token`
    RefreshToken,
    /// `audience`
    Audience,
    /// `action` (Pay-me)
    Action,
    /// `identifier` (Peinau)
    Identifier,
    /// Anything else.
    Other(String),
}

impl Key {
    /// The wire name.
    pub fn name(&self) -> &str {
        match self {
            Key::GrantType => "grant_type",
            Key::ClientId => "client_id",
            Key::ClientSecret => "client_secret",
            Key::Scope => "scope",
            Key::Username => "username",
            Key::Password => "password",
            Key::RefreshToken => "refresh_token",
            Key::Audience => "audience",
            Key::Action => "action",
            Key::Identifier => "identifier",
            Key::Other(s) => s,
        }
    }

    /// Whether a decoder treats this parameter's value as a secret, or (for
    /// `identifier`) as a value that must never travel in clear.
    pub fn is_secret(&self) -> bool {
        matches!(
            self,
            Key::ClientSecret | Key::Password | Key::RefreshToken | Key::Identifier
        )
    }
}

/// A parameter value: mostly one a decoder looks for, sometimes anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Value {
    /// `client_credentials`
    ClientCredentials,
    /// `password`
    Password,
    /// `refresh_token`
    RefreshToken,
    /// `authorize` (Pay-me's `action`)
    Authorize,
    /// `create:token` plus other scopes (Pay-me's required scope)
    CreateToken(String),
    /// A number (JSON bodies carry some parameters as numbers).
    Number(i64),
    /// Anything else.
    Text(String),
}

impl Value {
    /// The value as text.
    pub fn text(&self) -> String {
        match self {
            Value::ClientCredentials => "client_credentials".into(),
            Value::Password => "password".into(),
            Value::RefreshToken => "refresh_token".into(),
            Value::Authorize => "authorize".into(),
            Value::CreateToken(more) => format!("create:token {more}"),
            Value::Number(n) => n.to_string(),
            Value::Text(s) => s.clone(),
        }
    }

    fn json(&self) -> String {
        match self {
            Value::Number(n) => n.to_string(),
            other => json_string(&other.text()),
        }
    }
}

/// A JSON value in a body, nested at most once.
#[derive(Arbitrary, Debug, Clone)]
pub enum JsonMember {
    /// A string or number.
    Scalar(Value),
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An array of scalars.
    Array(Vec<Value>),
    /// An object of scalars.
    Object(Vec<(Key, Value)>),
}

impl JsonMember {
    fn render(&self) -> String {
        match self {
            JsonMember::Scalar(v) => v.json(),
            JsonMember::Null => "null".into(),
            JsonMember::Bool(b) => b.to_string(),
            JsonMember::Array(items) => {
                let items: Vec<String> = items.iter().map(Value::json).collect();
                format!("[{}]", items.join(","))
            }
            JsonMember::Object(pairs) => json_object(pairs.iter().map(|(k, v)| (k, v.json()))),
        }
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A JSON object written member by member, so that repeats survive.
fn json_object<'a>(members: impl Iterator<Item = (&'a Key, String)>) -> String {
    let members: Vec<String> = members
        .map(|(k, v)| format!("{}:{v}", json_string(k.name())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A request body in one of the shapes ficha's dialects read, or not.
#[derive(Arbitrary, Debug, Clone)]
pub enum Body {
    /// Nothing.
    Empty,
    /// `{}`, as some Nequi clients send.
    EmptyJson,
    /// Any bytes.
    Raw(Vec<u8>),
    /// A form, each name and value form-urlencoded or written as is.
    Form {
        /// The parameters, in order, repeats kept.
        pairs: Vec<(Key, Value)>,
        /// Whether to form-urlencode them.
        encode: bool,
    },
    /// A JSON object, members in order, repeats kept.
    Json(Vec<(Key, JsonMember)>),
    /// Peinau's `{key=value, key=value}`.
    Brace(Vec<(Key, Value)>),
}

impl Body {
    /// The body's bytes.
    pub fn render(&self) -> Vec<u8> {
        match self {
            Body::Empty => Vec::new(),
            Body::EmptyJson => b"{}".to_vec(),
            Body::Raw(b) => b.clone(),
            Body::Form { pairs, encode } => form(pairs, *encode).into_bytes(),
            Body::Json(members) => {
                json_object(members.iter().map(|(k, v)| (k, v.render()))).into_bytes()
            }
            Body::Brace(pairs) => {
                let pairs: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.name(), v.text()))
                    .collect();
                format!("{{{}}}", pairs.join(", ")).into_bytes()
            }
        }
    }

    /// Every `(name, value)` the body was built from, nested ones included.
    pub fn pairs(&self) -> Vec<(Key, String)> {
        match self {
            Body::Form { pairs, .. } | Body::Brace(pairs) => {
                pairs.iter().map(|(k, v)| (k.clone(), v.text())).collect()
            }
            Body::Json(members) => {
                let mut out = Vec::new();
                for (k, m) in members {
                    match m {
                        JsonMember::Scalar(v) => out.push((k.clone(), v.text())),
                        JsonMember::Object(inner) => {
                            out.extend(inner.iter().map(|(k, v)| (k.clone(), v.text())))
                        }
                        JsonMember::Array(items) => {
                            out.extend(items.iter().map(|v| (Key::Other(String::new()), v.text())))
                        }
                        JsonMember::Null | JsonMember::Bool(_) => {}
                    }
                }
                out
            }
            Body::Empty | Body::EmptyJson | Body::Raw(_) => Vec::new(),
        }
    }
}

fn form(pairs: &[(Key, Value)], encode: bool) -> String {
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            if encode {
                format!("{}={}", urlencode(k.name()), urlencode(&v.text()))
            } else {
                format!("{}={}", k.name(), v.text())
            }
        })
        .collect();
    pairs.join("&")
}

/// The `Authorization` header.
#[derive(Arbitrary, Debug, Clone)]
pub enum Auth {
    /// `Basic base64(id:secret)`, form-urlencoded first or not.
    Basic {
        /// The client id.
        id: String,
        /// The secret.
        secret: String,
        /// RFC 6749 §2.3.1 encoding.
        encode: bool,
    },
    /// `Basic id:secret`, no base64 (Peinau's documentation).
    Unencoded {
        /// The client id.
        id: String,
        /// The secret.
        secret: String,
    },
    /// Any scheme and value.
    Other(String),
    /// Any bytes (most are not a valid header value).
    Bytes(Vec<u8>),
}

impl Auth {
    fn render(&self) -> Vec<u8> {
        match self {
            Auth::Basic { id, secret, encode } => basic(id, secret, *encode).into_bytes(),
            Auth::Unencoded { id, secret } => format!("Basic {id}:{secret}").into_bytes(),
            Auth::Other(s) => s.clone().into_bytes(),
            Auth::Bytes(b) => b.clone(),
        }
    }

    /// The secret this header carries, when it was built from one.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Auth::Basic { secret, .. } | Auth::Unencoded { secret, .. } => Some(secret),
            Auth::Other(_) | Auth::Bytes(_) => None,
        }
    }
}

/// The `Content-Type` header.
#[derive(Arbitrary, Debug, Clone)]
pub enum ContentType {
    /// `application/x-www-form-urlencoded`
    Form,
    /// `application/x-www-form-urlencoded; charset=UTF-8`
    FormCharset,
    /// `application/json`
    Json,
    /// Anything.
    Other(String),
}

impl ContentType {
    fn render(&self) -> String {
        match self {
            ContentType::Form => "application/x-www-form-urlencoded".into(),
            ContentType::FormCharset => "application/x-www-form-urlencoded; charset=UTF-8".into(),
            ContentType::Json => "application/json".into(),
            ContentType::Other(s) => s.clone(),
        }
    }
}

/// A token request as any dialect's endpoint may receive it.
#[derive(Arbitrary, Debug, Clone)]
pub struct Request {
    /// `Content-Type`, if sent.
    pub content_type: Option<ContentType>,
    /// `Authorization`, if sent.
    pub authorization: Option<Auth>,
    /// Pay-me's `ALG-API-VERSION`, if sent.
    pub api_version: Option<String>,
    /// Other headers (invalid names and values are dropped).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The query string: parameters (form-encoded) or anything.
    pub query: Option<Result<Vec<(Key, Value)>, String>>,
    /// The body.
    pub body: Body,
}

impl Request {
    /// The query string, headers and body as the endpoint receives them.
    pub fn render(&self) -> (Option<String>, HeaderMap, Vec<u8>) {
        let mut headers = HeaderMap::new();
        let mut add = |name: &str, value: &[u8]| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        };
        for (name, value) in self.headers.iter().take(8) {
            add(name, value);
        }
        if let Some(ct) = &self.content_type {
            add("content-type", ct.render().as_bytes());
        }
        if let Some(auth) = &self.authorization {
            add("authorization", &auth.render());
        }
        if let Some(v) = &self.api_version {
            add("alg-api-version", v.as_bytes());
        }
        let query = self.query.as_ref().map(|q| match q {
            Ok(pairs) => form(pairs, true),
            Err(raw) => raw.clone(),
        });
        (query, headers, self.body.render())
    }
}
