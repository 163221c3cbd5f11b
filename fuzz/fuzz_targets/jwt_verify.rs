//! The access-token verifier behind introspection, `/auth/verify` and
//! `ficha token verify` (`verify_access_token`), with an in-memory ES256 +
//! RS256 key ring; and the JWK Set reader of `token verify --jwks`.
//!
//! Inputs: arbitrary strings; valid tokens with edits (bytes flipped,
//! inserted, removed, segments swapped or replaced); tokens this ring
//! really signs over an arbitrary header and payload; and arbitrary
//! header/payload/signature triples.
//!
//! Checks: no panic; a token is accepted only when its signed part is one
//! the ring signed in this run, its header is `typ: at+jwt` with the
//! signing key's own `alg` and `kid`, its issuer is the expected one and
//! `now < exp`.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ficha::keys::{Alg, KeyRing};
use ficha::oauth::verify_access_token;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const ISS: &str = "https://auth.wallet.example";
const NOW: i64 = 1_700_000_000;

struct Fixture {
    ring: KeyRing,
    /// Valid tokens, one per key and claim set.
    tokens: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ring = KeyRing::ephemeral(&[Alg::Es256, Alg::Rs256]).expect("a ring");
        let claims = [
            json!({"iss": ISS, "sub": "payvalida", "client_id": "payvalida",
                   "aud": "https://wallet.example", "scope": "transaction",
                   "iat": NOW, "exp": NOW + 1200, "jti": "jti-1"}),
            json!({"iss": ISS, "sub": "641281901508761220281", "client_id": "641281901508761220281",
                   "aud": ISS, "scope": "", "iat": NOW, "exp": NOW + 60, "jti": "jti-2",
                   "enc_identifier": "eyJhbGciOiJkaXIifQ..aXY.Y3Q.dGFn"}),
        ];
        let mut tokens = Vec::new();
        for alg in [Alg::Es256, Alg::Rs256] {
            let signer = ring.signer(alg).expect("a signer");
            for c in &claims {
                tokens.push(signer.sign(c).expect("signs"));
            }
        }
        Fixture { ring, tokens }
    })
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip {
        at: u16,
        mask: u8,
    },
    Insert {
        at: u16,
        byte: u8,
    },
    Remove {
        at: u16,
    },
    Truncate {
        at: u16,
    },
    /// Replace segment `which` (0-2) with base64url of `bytes`.
    Segment {
        which: u8,
        bytes: Vec<u8>,
    },
    /// Take segment `which` from another valid token.
    Swap {
        which: u8,
        from: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum Typ {
    AtJwt,
    ApplicationAtJwt,
    Upper,
    Jwt,
    Missing,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum AlgName {
    Es256,
    Rs256,
    None,
    Hs256,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Es,
    Rs,
    Missing,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Claim {
    Int(i64),
    Float(f64),
    Text(String),
    Iss,
    Null,
    Missing,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(String),
    Edited {
        token: u8,
        edits: Vec<Edit>,
    },
    /// Signed for real by the ring's `signer` key over this header and payload.
    Signed {
        signer: bool,
        typ: Typ,
        alg: AlgName,
        kid: Kid,
        extra_header: Vec<(String, String)>,
        iss: Claim,
        exp: Claim,
        jti: Claim,
        other: Vec<(String, Claim)>,
    },
    Parts {
        header: String,
        payload: String,
        signature: Vec<u8>,
    },
    Jwks(String),
}

fuzz_target!(|input: (Input, i32, bool)| {
    let (input, offset, check_issuer) = input;
    let f = fixture();
    let now = NOW + i64::from(offset);
    let issuer = check_issuer.then_some(ISS);
    let (token, signed): (String, Vec<String>) = match input {
        Input::Raw(t) => (t, Vec::new()),
        Input::Edited { token, edits } => {
            let mut t = f.tokens[usize::from(token) % f.tokens.len()]
                .clone()
                .into_bytes();
            for e in edits.iter().take(8) {
                edit(&mut t, e, &f.tokens);
            }
            (String::from_utf8_lossy(&t).into_owned(), f.tokens.clone())
        }
        Input::Signed {
            signer,
            typ,
            alg,
            kid,
            extra_header,
            iss,
            exp,
            jti,
            other,
        } => {
            let key = f
                .ring
                .signer(if signer { Alg::Rs256 } else { Alg::Es256 })
                .expect("key");
            let mut header = serde_json::Map::new();
            for (k, v) in extra_header.into_iter().take(4) {
                header.insert(k, v.into());
            }
            put(
                &mut header,
                "typ",
                match typ {
                    Typ::AtJwt => Some("at+jwt".into()),
                    Typ::ApplicationAtJwt => Some("application/at+jwt".into()),
                    Typ::Upper => Some("AT+JWT".into()),
                    Typ::Jwt => Some("JWT".into()),
                    Typ::Missing => None,
                    Typ::Other(s) => Some(s),
                },
            );
            put(
                &mut header,
                "alg",
                Some(match alg {
                    AlgName::Es256 => "ES256".into(),
                    AlgName::Rs256 => "RS256".into(),
                    AlgName::None => "none".into(),
                    AlgName::Hs256 => "HS256".into(),
                    AlgName::Other(s) => s,
                }),
            );
            let kid_of = |a| f.ring.signer(a).expect("key").kid().to_owned();
            put(
                &mut header,
                "kid",
                match kid {
                    Kid::Es => Some(kid_of(Alg::Es256)),
                    Kid::Rs => Some(kid_of(Alg::Rs256)),
                    Kid::Missing => None,
                    Kid::Other(s) => Some(s),
                },
            );
            let mut payload =
                json!({"sub": "s", "client_id": "c", "aud": "a", "scope": "x", "iat": NOW})
                    .as_object()
                    .cloned()
                    .expect("an object");
            for (k, c) in other.into_iter().take(4) {
                claim(&mut payload, &k, c);
            }
            claim(&mut payload, "iss", iss);
            claim(&mut payload, "exp", exp);
            claim(&mut payload, "jti", jti);
            let header_b64 = B64.encode(Value::Object(header).to_string());
            let token = key
                .sign_with_header(&header_b64, &Value::Object(payload))
                .expect("signs");
            let signed_part = token.rsplit_once('.').expect("a JWS").0.to_owned();
            (token, vec![format!("{signed_part}.")])
        }
        Input::Parts {
            header,
            payload,
            signature,
        } => (
            format!(
                "{}.{}.{}",
                B64.encode(header),
                B64.encode(payload),
                B64.encode(signature)
            ),
            Vec::new(),
        ),
        Input::Jwks(doc) => {
            let _ = KeyRing::from_jwks(&doc);
            return;
        }
    };
    let Ok(verified) = verify_access_token(&f.ring, &token, issuer, now) else {
        return;
    };
    // Accepted: the signed part must be one this ring signed in this run.
    let (signed_part, _) = token.rsplit_once('.').expect("a JWS");
    assert!(
        signed
            .iter()
            .any(|t| t.starts_with(&format!("{signed_part}."))),
        "a token the ring never signed was accepted: {token}"
    );
    let header: Value = serde_json::from_slice(
        &B64.decode(signed_part.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("a JSON header");
    let typ = header["typ"].as_str().expect("a typ");
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    assert!(typ.eq_ignore_ascii_case("at+jwt"), "typ {typ}");
    let kid = header["kid"].as_str().expect("a kid");
    let key = [Alg::Es256, Alg::Rs256]
        .into_iter()
        .filter_map(|a| f.ring.signer(a))
        .find(|k| k.kid() == kid)
        .expect("the kid of a ring key");
    assert_eq!(header["alg"], key.alg().as_str(), "alg confusion");
    assert!(now < verified.claims.exp, "expired token accepted");
    if let Some(iss) = issuer {
        assert_eq!(verified.claims.iss, iss);
    }
});

fn put(map: &mut serde_json::Map<String, Value>, k: &str, v: Option<String>) {
    match v {
        Some(v) => {
            map.insert(k.to_owned(), v.into());
        }
        None => {
            map.remove(k);
        }
    }
}

fn claim(map: &mut serde_json::Map<String, Value>, k: &str, c: Claim) {
    let v = match c {
        Claim::Int(i) => i.into(),
        Claim::Float(x) => json!(x),
        Claim::Text(s) => s.into(),
        Claim::Iss => ISS.into(),
        Claim::Null => Value::Null,
        Claim::Missing => {
            map.remove(k);
            return;
        }
    };
    map.insert(k.to_owned(), v);
}

fn edit(t: &mut Vec<u8>, e: &Edit, tokens: &[String]) {
    let at = |i: u16, len: usize| usize::from(i) % (len + 1);
    match *e {
        Edit::Flip { at: i, mask } => {
            if !t.is_empty() {
                let i = usize::from(i) % t.len();
                t[i] ^= mask;
            }
        }
        Edit::Insert { at: i, byte } => {
            let i = at(i, t.len());
            t.insert(i, byte);
        }
        Edit::Remove { at: i } => {
            if !t.is_empty() {
                let i = usize::from(i) % t.len();
                t.remove(i);
            }
        }
        Edit::Truncate { at: i } => {
            let i = at(i, t.len());
            t.truncate(i);
        }
        Edit::Segment { which, ref bytes } => {
            let mut parts: Vec<Vec<u8>> = t.split(|&b| b == b'.').map(<[u8]>::to_vec).collect();
            if let Some(p) = parts.get_mut(usize::from(which) % 3) {
                *p = B64.encode(bytes).into_bytes();
            }
            *t = parts.join(&b'.');
        }
        Edit::Swap { which, from } => {
            let other = &tokens[usize::from(from) % tokens.len()];
            let which = usize::from(which) % 3;
            let mut parts: Vec<Vec<u8>> = t.split(|&b| b == b'.').map(<[u8]>::to_vec).collect();
            if let (Some(p), Some(o)) = (parts.get_mut(which), other.split('.').nth(which)) {
                *p = o.as_bytes().to_vec();
            }
            *t = parts.join(&b'.');
        }
    }
}
