//! The HTTP Basic client-credentials parser (`parse_basic`, RFC 6749
//! §2.3.1) and the rewrite of an unencoded `Basic id:secret`
//! (`encode_raw_basic`).
//!
//! Checks: no panic on any header; an accepted header yields one or two
//! distinct readings whose ids are RFC 6749 VSCHAR; `encode_raw_basic` is
//! idempotent and leaves every proper base64 header alone; and ids and
//! secrets of any VSCHAR round-trip through a header built the RFC way
//! (the encoded reading comes first), built raw (the raw reading is among
//! the candidates) and written unencoded as Peinau's clients do.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ficha::oauth::{encode_raw_basic, parse_basic, Candidate};
use ficha_fuzz::{basic, vschar};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret as _;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any header value.
    Header(String),
    /// `<scheme> base64(bytes)`.
    Base64 { scheme: String, bytes: Vec<u8> },
    /// An id and a secret, in each of the three ways a client sends them.
    Credentials { id: String, secret: String },
}

fuzz_target!(|input: Input| match input {
    Input::Header(h) => header(&h),
    Input::Base64 { scheme, bytes } => header(&format!("{scheme} {}", STANDARD.encode(bytes))),
    Input::Credentials { id, secret } => round_trip(&vschar(&id), &vschar(&secret)),
});

fn header(h: &str) {
    if let Ok(candidates) = parse_basic(h) {
        well_formed(&candidates);
    }
    let rewritten = encode_raw_basic(h);
    assert_eq!(
        encode_raw_basic(&rewritten),
        rewritten,
        "not idempotent: {h:?}"
    );
    if rewritten != h {
        let (scheme, value) = h.trim().split_once(' ').expect("a scheme and a value");
        assert!(scheme.eq_ignore_ascii_case("basic") && value.contains(':'));
        let b64 = rewritten.strip_prefix("Basic ").expect("the Basic scheme");
        assert_eq!(
            STANDARD.decode(b64).expect("base64"),
            value.trim().as_bytes()
        );
    }
}

fn well_formed(candidates: &[Candidate]) {
    assert!((1..=2).contains(&candidates.len()));
    for c in candidates {
        let id = c.id.as_ref();
        assert!(
            !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
        );
    }
    if let [a, b] = candidates {
        assert!(
            a.id != b.id || a.secret.expose_secret() != b.secret.expose_secret(),
            "two identical readings"
        );
    }
}

fn readings(h: &str) -> Vec<(String, String)> {
    let candidates = parse_basic(h).unwrap_or_else(|e| panic!("{h:?} refused: {e}"));
    well_formed(&candidates);
    candidates
        .iter()
        .map(|c| {
            (
                c.id.as_ref().to_owned(),
                c.secret.expose_secret().to_owned(),
            )
        })
        .collect()
}

fn round_trip(id: &str, secret: &str) {
    if id.is_empty() || id.len() > 255 {
        return;
    }
    let pair = (id.to_owned(), secret.to_owned());
    // RFC 6749 §2.3.1: form-urlencoded, then base64; that reading first.
    assert_eq!(readings(&basic(id, secret, true))[0], pair);
    // The first `:` splits id from secret, so a raw id cannot hold one.
    if id.contains(':') {
        return;
    }
    assert!(readings(&basic(id, secret, false)).contains(&pair));
    // Unencoded, as Peinau documents it; the header value is trimmed, as
    // HTTP trims optional whitespace, so edge spaces cannot survive.
    if !id.starts_with(' ') && !secret.ends_with(' ') {
        let rewritten = encode_raw_basic(&format!("Basic {id}:{secret}")).into_owned();
        assert!(readings(&rewritten).contains(&pair));
    }
}
