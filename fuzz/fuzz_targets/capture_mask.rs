//! The sandbox request log's masker (`mask_body`, `mask_header`,
//! `masked_headers`): what `GET /sandbox/requests` serves.
//!
//! Bodies are built as a form (encoded or not), a JSON object (nested) or
//! Peinau's brace form, with credentials under the names decoders read and
//! variants of them (case, spaces, percent-encoding). Every value under a
//! credential name holds the marker `Q`, which nothing else may hold; the
//! body is then masked with any list of formats, as if posted to any
//! dialect. Checks: no panic; no `Q` ever reaches the output; a
//! credential header keeps at most its scheme.
#![no_main]

use arbitrary::Arbitrary;
use ficha::sandbox::{mask_body, mask_header, masked_headers, BodyFormat, MASK};
use ficha_fuzz::{json_string, urlencode};
use libfuzzer_sys::fuzz_target;

/// The marker every credential value carries and nothing else does.
const MARK: char = 'Q';

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Credential {
    ClientSecret,
    Password,
    RefreshToken,
    AccessToken,
    ClientAssertion,
    Identifier,
    Code,
    ApiKey,
    Passwd,
}

impl Credential {
    fn name(self) -> &'static str {
        match self {
            Credential::ClientSecret => "client_secret",
            Credential::Password => "password",
            Credential::RefreshToken => "refresh_token",
            Credential::AccessToken => "access_token",
            Credential::ClientAssertion => "client_assertion",
            Credential::Identifier => "identifier",
            Credential::Code => "code",
            Credential::ApiKey => "api_key",
            Credential::Passwd => "passwd",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Variant {
    AsIs,
    Upper,
    Padded,
    /// Every byte percent-encoded (forms only; as is elsewhere).
    Percent,
}

#[derive(Arbitrary, Debug, Clone)]
enum Name {
    Credential(Credential, Variant),
    Other(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum JsonValue {
    Text(String),
    Number(i32),
    Null,
    Array(Vec<JsonValue>),
    Object(Vec<(Name, JsonValue)>),
}

#[derive(Arbitrary, Debug, Clone)]
enum Body {
    Form {
        pairs: Vec<(Name, String)>,
        encode: bool,
    },
    Json(Vec<(Name, JsonValue)>),
    Brace(Vec<(Name, String)>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Format {
    Json,
    Brace,
    Form,
}

#[derive(Arbitrary, Debug, Clone)]
enum HeaderName {
    Authorization,
    ProxyAuthorization,
    Cookie,
    ApiKey,
    ClientSecret,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    body: Body,
    formats: Vec<Format>,
    headers: Vec<(HeaderName, Option<String>)>,
}

fuzz_target!(|input: Input| {
    let formats: Vec<BodyFormat> = input
        .formats
        .iter()
        .take(4)
        .map(|f| match f {
            Format::Json => BodyFormat::Json,
            Format::Brace => BodyFormat::Brace,
            Format::Form => BodyFormat::Form,
        })
        .collect();
    let (body, claims) = render(&input.body);
    let masked = mask_body(&body, &formats);
    if claims {
        assert!(
            !masked.contains(MARK),
            "a credential let through:\n  in:  {}\n  out: {masked}\n  formats: {formats:?}",
            String::from_utf8_lossy(&body)
        );
    }
    headers(&input.headers);
});

/// The body, and whether its credentials are marked (a raw body is not).
fn render(body: &Body) -> (Vec<u8>, bool) {
    match body {
        Body::Raw(b) => (b.clone(), false),
        Body::Form { pairs, encode } => {
            let pairs: Vec<String> = pairs
                .iter()
                .map(|(n, v)| {
                    let (name, secret) = form_name(n, *encode);
                    let value = value(v, secret);
                    let value = if *encode {
                        urlencode(&value)
                    } else {
                        strip(&value, "&=")
                    };
                    format!("{name}={value}")
                })
                .collect();
            (pairs.join("&").into_bytes(), true)
        }
        Body::Json(members) => (json_object(members, false).into_bytes(), true),
        Body::Brace(pairs) => {
            let pairs: Vec<String> = pairs
                .iter()
                .map(|(n, v)| {
                    let (name, secret) = plain_name(n);
                    let name = strip(&name, ",={}");
                    let v = strip(&value(v, secret), ",");
                    format!("{name}={v}")
                })
                .collect();
            (format!("{{{}}}", pairs.join(", ")).into_bytes(), true)
        }
    }
}

/// A value: marked under a credential name, free of the marker elsewhere.
fn value(v: &str, secret: bool) -> String {
    let v: String = v.chars().filter(|&c| c != MARK).collect();
    if secret {
        format!("{MARK}{v}")
    } else {
        v
    }
}

fn strip(s: &str, chars: &str) -> String {
    s.chars().filter(|c| !chars.contains(*c)).collect()
}

/// The name as written outside forms, and whether it names a credential.
fn plain_name(n: &Name) -> (String, bool) {
    match n {
        Name::Credential(c, v) => {
            let name = c.name();
            let name = match v {
                Variant::AsIs | Variant::Percent => name.to_owned(),
                Variant::Upper => name.to_ascii_uppercase(),
                Variant::Padded => format!(" {name} "),
            };
            (name, true)
        }
        Name::Other(s) => (value(s, false), false),
    }
}

/// The name as written in a form.
fn form_name(n: &Name, encode: bool) -> (String, bool) {
    let (name, secret) = plain_name(n);
    let name = match n {
        Name::Credential(_, Variant::Percent) => {
            name.bytes().map(|b| format!("%{b:02X}")).collect()
        }
        _ if encode => urlencode(&name),
        // Unencoded, a name cannot hold the separators.
        _ => strip(&name, "&=+%"),
    };
    (name, secret)
}

fn json_object(members: &[(Name, JsonValue)], secret: bool) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(n, v)| {
            let (name, is_secret) = plain_name(n);
            format!(
                "{}:{}",
                json_string(&name),
                json_value(v, secret || is_secret)
            )
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

fn json_value(v: &JsonValue, secret: bool) -> String {
    match v {
        JsonValue::Text(s) => json_string(&value(s, secret)),
        // Numbers and null carry no marker; under a credential name they
        // are masked all the same, which the marker cannot show.
        JsonValue::Number(n) => n.to_string(),
        JsonValue::Null => "null".into(),
        JsonValue::Array(items) => {
            let items: Vec<String> = items.iter().map(|i| json_value(i, secret)).collect();
            format!("[{}]", items.join(","))
        }
        JsonValue::Object(members) => json_object(members, secret),
    }
}

fn headers(headers: &[(HeaderName, Option<String>)]) {
    let named: Vec<(String, Option<&str>, bool)> = headers
        .iter()
        .take(8)
        .map(|(n, v)| {
            let name = match n {
                HeaderName::Authorization => "authorization",
                HeaderName::ProxyAuthorization => "Proxy-Authorization",
                HeaderName::Cookie => "cookie",
                HeaderName::ApiKey => "x-api-key",
                HeaderName::ClientSecret => "X-Client-Secret",
                HeaderName::Other(s) => s,
            };
            (
                name.to_owned(),
                v.as_deref(),
                !matches!(n, HeaderName::Other(_)),
            )
        })
        .collect();
    for (name, value, credential) in &named {
        let out = mask_header(name, *value);
        if *credential {
            let scheme = value
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or_default();
            assert!(
                out == MASK || out == format!("{scheme} {MASK}"),
                "{name}: {value:?} masked as {out:?}"
            );
        }
    }
    let _ = masked_headers(named.iter().map(|(n, v, _)| (n.as_str(), *v)));
}
