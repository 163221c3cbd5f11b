//! Properties of the decoders, checked on generated inputs (proptest; the
//! long runs are the cargo-fuzz targets in `fuzz/`): no decoder panics on
//! any input; ids and secrets of any RFC 6749 VSCHAR round-trip through a
//! Basic header (encoded, raw or unencoded) and a form body; the sandbox
//! masker never lets a credential through; the verifier accepts only what
//! its ring signed. Ids and secrets are drawn from RFC 6749 VSCHAR
//! (`%x20-7E`, the regex class `[ -~]`).

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ficha::http::dialect::{DecodeContext, DialectRequest};
use ficha::http::DialectKind;
use ficha::keys::{Alg, ClaimsKeys, KeyRing};
use ficha::oauth::{encode_raw_basic, parse_basic, parse_form, verify_access_token};
use ficha::sandbox::{mask_body, BodyFormat};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret as _;

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(raw: &str) -> String {
    format!("Basic {}", STANDARD.encode(raw))
}

/// Every reading of a Basic header, as `(id, secret)`.
fn readings(header: &str) -> Vec<(String, String)> {
    parse_basic(header)
        .unwrap_or_else(|e| panic!("{header:?} refused: {e}"))
        .iter()
        .map(|c| {
            (
                c.id.as_ref().to_owned(),
                c.secret.expose_secret().to_owned(),
            )
        })
        .collect()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_basic_parser_never_panics(
        header in ".*",
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        raw in "[ -~]{1,8}:[ -~%+]{0,8}",
    ) {
        for h in [header.clone(), format!("Basic {}", STANDARD.encode(&bytes)), basic(&raw)] {
            if let Ok(candidates) = parse_basic(&h) {
                prop_assert!((1..=2).contains(&candidates.len()));
                // One presented secret is never verified twice.
                if let [a, b] = &candidates[..] {
                    prop_assert!(a.id != b.id || a.secret.expose_secret() != b.secret.expose_secret());
                }
            }
            let rewritten = encode_raw_basic(&h);
            prop_assert_eq!(encode_raw_basic(&rewritten), rewritten.clone());
        }
    }

    #[test]
    fn basic_credentials_encoded_the_rfc_way_read_back_first(
        id in "[ -~]{1,40}",
        secret in "[ -~]{0,40}",
    ) {
        // RFC 6749 §2.3.1: form-urlencode each, then base64.
        let header = basic(&format!("{}:{}", urlencode(&id), urlencode(&secret)));
        prop_assert_eq!(&readings(&header)[0], &(id, secret));
    }

    #[test]
    fn basic_credentials_sent_raw_are_among_the_readings(
        id in "[ -9;-~]{1,40}",
        secret in "[ -~]{0,40}",
    ) {
        // No urlencoding (most clients): the raw reading must be offered.
        let pair = (id.clone(), secret.clone());
        let raw = basic(&format!("{id}:{secret}"));
        prop_assert!(readings(&raw).contains(&pair));
        // Unencoded, no base64 (Peinau's documentation); HTTP trims the
        // header value, so edge spaces cannot survive.
        if !id.starts_with(' ') && !secret.ends_with(' ') {
            let header = encode_raw_basic(&format!("Basic {id}:{secret}")).into_owned();
            prop_assert!(readings(&header).contains(&pair));
        }
    }

    #[test]
    fn a_form_round_trips_and_is_refused_exactly_on_a_repeat(
        map in prop::collection::hash_map("[ -~]{0,12}", ".{0,24}", 0..8),
        raw in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&map).finish();
        let parsed: HashMap<String, String> = parse_form(body.as_bytes()).unwrap().into_iter().collect();
        prop_assert_eq!(parsed, map);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&raw).into_owned().collect();
        let distinct: HashMap<String, String> = pairs.iter().cloned().collect();
        prop_assert_eq!(parse_form(&raw).is_ok(), distinct.len() == pairs.len());
    }
}

/// A parameter name a decoder reads, or any.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "grant_type",
            "client_id",
            "client_secret",
            "scope",
            "username",
            "password",
            "refresh_token",
            "audience",
            "action",
            "identifier",
        ])
        .prop_map(str::to_owned),
        ".{0,8}",
    ]
}

/// A parameter value a decoder looks for, or any.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "client_credentials",
            "password",
            "refresh_token",
            "authorize",
            "create:token",
            "create:token post:charges",
            "123456789",
        ])
        .prop_map(str::to_owned),
        ".{0,24}",
    ]
}

/// A body in any dialect's shape, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let pairs = || prop::collection::vec((key(), value()), 0..6);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..96),
        pairs().prop_map(|p| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(p)
                .finish()
                .into_bytes()
        }),
        pairs().prop_map(|p| {
            let members: Vec<String> = p
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::json!(k), serde_json::json!(v)))
                .collect();
            format!("{{{}}}", members.join(",")).into_bytes()
        }),
        pairs().prop_map(|p| {
            let pairs: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{{{}}}", pairs.join(", ")).into_bytes()
        }),
    ]
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        ("[ -~]{1,16}", "[ -~]{0,16}").prop_map(|(i, s)| Some(basic(&format!("{i}:{s}")))),
        ("[ -~]{1,16}", "[ -~]{0,16}").prop_map(|(i, s)| Some(format!("Basic {i}:{s}"))),
        ".{0,32}".prop_map(Some),
    ]
}

fn claims_keys() -> &'static ClaimsKeys {
    static KEYS: OnceLock<ClaimsKeys> = OnceLock::new();
    KEYS.get_or_init(|| ClaimsKeys::ephemeral().unwrap())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn no_dialect_decoder_panics(
        query in prop::option::of(".{0,40}"),
        content_type in prop::option::of(prop_oneof![
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("application/json".to_owned()),
            ".{0,24}",
        ]),
        auth in authorization(),
        body in body(),
    ) {
        let mut headers = HeaderMap::new();
        for (name, v) in [("content-type", content_type), ("authorization", auth)] {
            if let Some(v) = v.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        let req = DialectRequest { query: query.as_deref(), headers: &headers, body: &body };
        let ctx = DecodeContext { claims: claims_keys() };
        for kind in DialectKind::ALL {
            if let Ok(r) = kind.adapter().decode(&req, &ctx) {
                if kind == DialectKind::Payme {
                    prop_assert!(r.scope.as_ref().is_some_and(|s| s.contains("create:token")));
                }
            }
        }
    }
}

/// The marker every credential value carries and nothing else does.
const MARK: char = 'Q';

/// `(name, value)` pairs: credentials (under the names decoders read, in
/// any case) marked with [`MARK`], other values free of it.
fn marked_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let credential = (
        prop::sample::select(vec![
            "client_secret",
            "password",
            "refresh_token",
            "access_token",
            "identifier",
            "client_assertion",
            "Client_Secret",
            "PASSWORD",
        ]),
        "[^Q]{0,12}",
    )
        .prop_map(|(k, v)| (k.to_owned(), format!("{MARK}{v}")));
    let other = ("[^Q&=,{}]{0,8}", "[^Q]{0,12}");
    prop::collection::vec(prop_oneof![credential, other], 0..6)
}

fn format_list() -> impl Strategy<Value = Vec<BodyFormat>> {
    prop::collection::vec(
        prop::sample::select(vec![BodyFormat::Json, BodyFormat::Brace, BodyFormat::Form]),
        0..4,
    )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_masker_never_panics(body in prop::collection::vec(any::<u8>(), 0..128), formats in format_list()) {
        let _ = mask_body(&body, &formats);
    }

    #[test]
    fn the_masker_never_lets_a_credential_through(
        pairs in marked_pairs(),
        shape in 0..4u8,
        formats in format_list(),
    ) {
        // The body in one dialect's format, masked as any dialect would.
        let body = match shape {
            0 => form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish(),
            1 => {
                let p: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", k, v.replace(['&', '='], "")))
                    .collect();
                p.join("&")
            }
            2 => serde_json::json!({"outer": pairs.iter().cloned().collect::<HashMap<_, _>>(),
                                     "list": [pairs.iter().cloned().collect::<HashMap<_, _>>()]})
                .to_string(),
            _ => {
                let p: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.replace(',', "")))
                    .collect();
                format!("{{{}}}", p.join(", "))
            }
        };
        let masked = mask_body(body.as_bytes(), &formats);
        prop_assert!(!masked.contains(MARK), "{body} -> {masked} ({formats:?})");
    }
}

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| KeyRing::ephemeral(&[Alg::Es256]).unwrap())
}

const ISS: &str = "https://auth.wallet.example";
const NOW: i64 = 1_700_000_000;

fn valid_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let claims = serde_json::json!({
            "iss": ISS, "sub": "c", "client_id": "c", "aud": ISS, "scope": "transaction",
            "iat": NOW, "exp": NOW + 1200, "jti": "j",
        });
        ring().signer(Alg::Es256).unwrap().sign(&claims).unwrap()
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_verifier_refuses_garbage_without_panicking(
        token in ".{0,200}",
        parts in (".{0,60}", ".{0,60}", prop::collection::vec(any::<u8>(), 0..80)),
    ) {
        let (h, p, s) = parts;
        let crafted = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(h),
            URL_SAFE_NO_PAD.encode(p),
            URL_SAFE_NO_PAD.encode(s)
        );
        for t in [token, crafted] {
            prop_assert!(verify_access_token(ring(), &t, Some(ISS), NOW).is_err());
        }
    }

    #[test]
    fn an_edited_token_is_accepted_only_if_its_signed_part_is_intact(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let good = valid_token();
        prop_assert!(verify_access_token(ring(), good, Some(ISS), NOW).is_ok());
        let mut t = good.as_bytes().to_vec();
        let i = at.index(t.len());
        if cut {
            t.truncate(i);
        } else {
            t[i] = byte;
        }
        let t = String::from_utf8_lossy(&t).into_owned();
        if verify_access_token(ring(), &t, Some(ISS), NOW).is_ok() {
            let signed = |t: &str| t.rsplit_once('.').map(|(s, _)| s.to_owned());
            prop_assert_eq!(signed(&t), signed(good));
        }
    }
}
