//! Masking a token request for the request log: every credential in its
//! headers, query and body replaced by [`MASK`]. Masking is structural (the
//! body is parsed in the formats its dialect accepts) and a body that
//! cannot be parsed, or that any reading still finds a credential in, is
//! masked whole.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// What replaces a masked value.
pub const MASK: &str = "***";

/// The longest header value kept, in characters.
const MAX_HEADER_VALUE: usize = 512;

/// At most this many headers are kept per request.
const MAX_HEADERS: usize = 64;

/// Words that mark a parameter or header name as carrying a credential,
/// wherever they appear in it, in any case.
const SENSITIVE_WORDS: [&str; 11] = [
    "secret",
    "password",
    "passwd",
    "token",
    "assertion",
    "credential",
    "authorization",
    "cookie",
    "api-key",
    "apikey",
    "api_key",
];

/// [`SENSITIVE_WORDS`] as one automaton: a name is read once, where
/// trying each word at each position cost about 2,000 instructions a
/// name, the larger part of a sandbox request's capture (BENCHMARKS.md).
static SENSITIVE: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(SENSITIVE_WORDS)
            .ok()
    });

/// Names nearly every token request carries, none holding a word of
/// [`SENSITIVE_WORDS`], `identifier` or `code` (a test checks): matched
/// whole before the automaton, which costs about 500 instructions a name
/// and ran some ten times a request (BENCHMARKS.md).
const COMMON_PLAIN_NAMES: [&str; 10] = [
    "host",
    "accept",
    "content-type",
    "content-length",
    "user-agent",
    "accept-encoding",
    "connection",
    "grant_type",
    "scope",
    "client_id",
];

/// Whether a parameter or header of this name carries a credential.
/// Runs for every header and parameter of every sandbox request.
fn sensitive(name: &str) -> bool {
    let name = name.trim();
    if COMMON_PLAIN_NAMES.contains(&name) {
        return false;
    }
    let word = match SENSITIVE.as_ref() {
        Some(words) => words.is_match(name),
        // The automaton of these few words always builds; were it not to,
        // the slow way gives the same answer.
        None => SENSITIVE_WORDS.iter().any(|w| {
            name.as_bytes()
                .windows(w.len())
                .any(|part| part.eq_ignore_ascii_case(w.as_bytes()))
        }),
    };
    word
        // Peinau's `identifier` travels sealed in the token, never in
        // clear (SPEC §5); `code` is an authorization code.
        || name.eq_ignore_ascii_case("identifier")
        || name.eq_ignore_ascii_case("code")
}

/// A header value as the log keeps it: credentials masked, keeping only
/// the scheme of an `Authorization` value (`Basic ***`).
pub fn mask_header(name: &str, value: Option<&str>) -> String {
    let Some(value) = value else {
        return MASK.to_owned();
    };
    if sensitive(name) {
        let scheme = value.split_whitespace().next().unwrap_or_default();
        let is_scheme = name.to_ascii_lowercase().ends_with("authorization")
            && !scheme.is_empty()
            && scheme.len() <= 16
            && scheme.bytes().all(|b| b.is_ascii_alphabetic())
            && value.trim() != scheme;
        return if is_scheme {
            format!("{scheme} {MASK}")
        } else {
            MASK.to_owned()
        };
    }
    // A value of at most MAX_HEADER_VALUE bytes has at most as many
    // characters: kept whole without walking them.
    if value.len() <= MAX_HEADER_VALUE {
        value.to_owned()
    } else {
        value.chars().take(MAX_HEADER_VALUE).collect()
    }
}

/// Collects masked headers, repeats joined by `, `.
pub fn masked_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = mask_header(&name, value);
        if let Some(prev) = out.get_mut(&name) {
            prev.push_str(", ");
            prev.push_str(&value);
        } else if out.len() < MAX_HEADERS {
            out.insert(name, value);
        }
    }
    out
}

/// The body formats a dialect accepts, tried in order when masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A JSON object.
    Json,
    /// Peinau's `{key=value, key=value}`.
    Brace,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// The body with every credential masked, read in the first of `formats`
/// that parses it; masked whole when none does, or when the masked text,
/// read in any format at all, still shows a credential.
///
/// That last check is for bodies sent in another dialect's format: a JSON
/// object posted to a form endpoint, with an `=` in some value, reads as one
/// odd form pair and would keep its `"client_secret"` in clear; a form
/// wrapped in braces reads as Peinau's brace form with `password=...`
/// inside a value. Whoever reads the log cannot know which reading the
/// client meant, so no reading may find a credential.
pub fn mask_body(body: &[u8], formats: &[BodyFormat]) -> String {
    let Ok(text) = std::str::from_utf8(body) else {
        return MASK.to_owned();
    };
    if text.trim().is_empty() {
        return text.to_owned();
    }
    formats
        .iter()
        .find_map(|f| match f {
            BodyFormat::Json => mask_json(text),
            BodyFormat::Brace => mask_brace(text),
            BodyFormat::Form => mask_form(text),
        })
        .filter(|masked| !shows_credential(masked))
        .unwrap_or_else(|| MASK.to_owned())
}

/// A parameter name as real clients write them (`grant_type`, `scope`,
/// `client_id`, `a[b]`): a pair named otherwise means the text is not
/// in this format, however it splits.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:[]~".contains(&b))
}

fn mask_json(text: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(text).ok()?;
    if !value.is_object() {
        return None;
    }
    mask_value(&mut value);
    Some(value.to_string())
}

fn mask_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if sensitive(k) {
                    *v = MASK.into();
                } else {
                    mask_value(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

/// The pairs of `{key=value, ...}` as Peinau's decoder splits them.
fn brace_pairs(text: &str) -> Option<impl Iterator<Item = &str>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(inner.split(',').map(str::trim).filter(|p| !p.is_empty()))
}

fn mask_brace(text: &str) -> Option<String> {
    let mut pairs = Vec::new();
    for pair in brace_pairs(text)? {
        let (k, v) = pair.split_once('=')?;
        let k = k.trim();
        if !plain_name(k) {
            return None;
        }
        let v = if sensitive(k) { MASK } else { v.trim() };
        pairs.push(format!("{k}={v}"));
    }
    Some(format!("{{{}}}", pairs.join(", ")))
}

/// A form name, decoded as `form_urlencoded` decodes it; borrowed when
/// there is nothing to decode (`grant_type`, `scope`: nearly always).
fn form_name(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        form_urlencoded::parse(format!("{raw}=").as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default(),
    )
}

/// A form is read only when every pair has an `=` and a plain name:
/// anything else may be a credential sent some other way, and is masked
/// whole.
fn mask_form(text: &str) -> Option<String> {
    let mut masked = String::with_capacity(text.len());
    for pair in text.trim().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let name = form_name(k);
        if !plain_name(name.trim()) {
            return None;
        }
        if !masked.is_empty() {
            masked.push('&');
        }
        masked.push_str(k);
        masked.push('=');
        masked.push_str(if sensitive(&name) { MASK } else { v });
    }
    Some(masked)
}

/// Whether any reading of `text` finds a credential whose value is not the
/// mask: JSON of any shape, and, however loosely the text splits into them,
/// brace or form pairs with a plain name.
fn shows_credential(text: &str) -> bool {
    fn json_shows(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
                if sensitive(k) {
                    v != MASK
                } else {
                    json_shows(v)
                }
            }),
            serde_json::Value::Array(items) => items.iter().any(json_shows),
            _ => false,
        }
    }
    let shows = |k: &str, v: &str| {
        let k = k.trim();
        plain_name(k) && sensitive(k) && v.trim() != MASK
    };
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| json_shows(&v))
        || brace_pairs(text).is_some_and(|mut pairs| {
            pairs.any(|p| p.split_once('=').is_some_and(|(k, v)| shows(k, v)))
        })
        || text
            .split('&')
            .filter_map(|p| p.split_once('='))
            .any(|(k, v)| shows(&form_name(k), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_in_every_body_format() {
        let form = mask_body(
            b"grant_type=password&username=u&password=p%40ss&client_secret=s3",
            &[BodyFormat::Form],
        );
        assert_eq!(
            form,
            "grant_type=password&username=u&password=***&client_secret=***"
        );
        let json = mask_body(
            br#"{"client_id":"c","client_secret":"s3","nested":{"refresh_token":"r"}}"#,
            &[BodyFormat::Json],
        );
        assert!(!json.contains("s3") && !json.contains("\"r\""), "{json}");
        assert!(json.contains(r#""client_id":"c""#), "{json}");
        let brace = mask_body(
            b"{grant_type=client_credentials, identifier=123, client_secret=x}",
            &[BodyFormat::Json, BodyFormat::Brace, BodyFormat::Form],
        );
        assert_eq!(
            brace,
            "{grant_type=client_credentials, identifier=***, client_secret=***}"
        );
    }

    #[test]
    fn a_name_is_sensitive_when_it_holds_a_word_in_any_case() {
        for name in [
            "client_secret",
            "Client-Secret",
            "password",
            "X-PASSWD",
            "refresh_token",
            "client_assertion",
            "credentials",
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "x-api-key",
            "ApiKey",
            "my_api_key",
            " identifier ",
            "CODE",
        ] {
            assert!(sensitive(name), "{name}");
        }
        for name in [
            "grant_type",
            "scope",
            "client_id",
            "host",
            "content-type",
            "codes",
            "identifiers",
            "tok",
            "",
        ] {
            assert!(!sensitive(name), "{name}");
        }
    }

    #[test]
    fn the_common_names_hold_no_sensitive_word() {
        for name in COMMON_PLAIN_NAMES {
            let lower = name.to_ascii_lowercase();
            assert!(
                !SENSITIVE_WORDS.iter().any(|w| lower.contains(w))
                    && !["identifier", "code"].contains(&name),
                "{name}"
            );
        }
    }

    #[test]
    fn a_body_that_does_not_parse_is_masked_whole() {
        assert_eq!(mask_body(b"client_secret:abc", &[BodyFormat::Form]), MASK);
        assert_eq!(mask_body(b"{oops secret", &[BodyFormat::Json]), MASK);
        assert_eq!(mask_body(br#"["secret"]"#, &[BodyFormat::Json]), MASK);
        assert_eq!(mask_body(&[0xff, 0xfe], &[BodyFormat::Form]), MASK);
        assert_eq!(mask_body(b"", &[BodyFormat::Json]), "");
    }

    #[test]
    fn a_body_in_another_dialects_format_never_shows_its_credential() {
        // JSON with an `=` in a value, posted to a form endpoint: one odd
        // pair, `{"redirect":"x?y` = `z","client_secret":"s3"}`.
        let json = br#"{"redirect":"x?y=z","client_secret":"s3"}"#;
        assert_eq!(mask_body(json, &[BodyFormat::Form]), MASK);
        // A form in braces reads as one brace pair `a` = `1&password=p`.
        let braced = b"{a=1&password=p}";
        let all = [BodyFormat::Json, BodyFormat::Brace, BodyFormat::Form];
        assert_eq!(mask_body(braced, &all), MASK);
        // A JSON array with a credential name inside one odd form name.
        let array = br#"[{"password":"p","x":"a=b"}]"#;
        assert_eq!(
            mask_body(array, &[BodyFormat::Json, BodyFormat::Form]),
            MASK
        );
        // Read in its own format, each is masked as usual.
        let own = mask_body(json, &[BodyFormat::Json]);
        assert!(own.contains(r#""client_secret":"***""#), "{own}");
        assert!(own.contains(r#""redirect":"x?y=z""#), "{own}");
        assert_eq!(mask_body(b"a=1&password=p", &all), "a=1&password=***");
    }

    #[test]
    fn authorization_keeps_only_its_scheme() {
        assert_eq!(
            mask_header("authorization", Some("Basic cGF5dmFsaWRhOnM=")),
            "Basic ***"
        );
        assert_eq!(
            mask_header("Authorization", Some("Basic id:secret")),
            "Basic ***"
        );
        assert_eq!(mask_header("authorization", Some("s3cr3t")), "***");
        assert_eq!(mask_header("cookie", Some("a=b")), "***");
        assert_eq!(
            mask_header("content-type", Some("application/json")),
            "application/json"
        );
    }
}
