//! Every dialect's request decoder, through the public adapter, on one
//! arbitrary request (headers, query string and body).
//!
//! Checks: no decoder panics; what a decoder accepts keeps its dialect's
//! rules (Pay-me: `create:token` and an audience; Nequi: its 3600 s
//! lifetime; Peinau: the `identifier` only sealed, and it opens back).
//! Secrets stay out of the decoded request's `Debug` by type
//! (`SecretString`), which a substring search could not check soundly:
//! any short secret is a substring of the `Debug` text itself.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ficha::http::dialect::{DecodeContext, DialectRequest};
use ficha::http::DialectKind;
use ficha::keys::ClaimsKeys;
use ficha::oauth::{AuthMethod, Credentials, TokenRequest};
use ficha_fuzz::Request;
use libfuzzer_sys::fuzz_target;

fn claims() -> &'static ClaimsKeys {
    static KEYS: OnceLock<ClaimsKeys> = OnceLock::new();
    KEYS.get_or_init(|| ClaimsKeys::ephemeral().expect("a claims key"))
}

fuzz_target!(|input: Request| {
    let (query, headers, body) = input.render();
    let req = DialectRequest {
        query: query.as_deref(),
        headers: &headers,
        body: &body,
    };
    let ctx = DecodeContext { claims: claims() };
    for kind in DialectKind::ALL {
        if let Ok(request) = kind.adapter().decode(&req, &ctx) {
            check(kind, &request);
        }
    }
});

fn check(kind: DialectKind, request: &TokenRequest) {
    if let Credentials::Secret { candidates, method } = &request.credentials {
        assert!(
            (1..=2).contains(&candidates.len()),
            "{kind}: {candidates:?}"
        );
        if kind == DialectKind::Payme {
            assert_eq!(*method, AuthMethod::ClientSecretPost, "{kind}");
        }
    }
    match kind {
        DialectKind::Payme => {
            let scope = request.scope.as_ref().expect("Pay-me: a scope");
            assert!(scope.contains("create:token"), "Pay-me: {scope}");
            assert!(
                request
                    .audience
                    .as_deref()
                    .is_some_and(|a| !a.trim().is_empty()),
                "Pay-me: an audience"
            );
        }
        DialectKind::Nequi => assert_eq!(request.lifetime, Some(3600), "Nequi"),
        DialectKind::Peinau => {
            if let Some(sealed) = request.extra_claims.get("enc_identifier") {
                let sealed = sealed.as_str().expect("a compact JWE");
                let plain = claims().open(sealed).expect("opens with its key");
                assert!(plain.len() <= 255 && !plain.chars().any(char::is_control));
                // RFC 7516 §7.1: the fourth part is the ciphertext.
                let ciphertext = sealed.split('.').nth(3).expect("five parts");
                let ciphertext = URL_SAFE_NO_PAD.decode(ciphertext).expect("base64url");
                // A short ciphertext may equal its plaintext by chance.
                if plain.len() >= 8 {
                    assert_ne!(ciphertext, plain.as_bytes(), "the identifier in clear");
                }
            }
        }
        DialectKind::Payvalida | DialectKind::Fegora => {}
    }
    assert!(
        request.extra_claims.keys().all(|k| k == "enc_identifier"),
        "{kind}: {:?}",
        request.extra_claims
    );
}
