//! The ceiling server for ficha's benchmark (bench/run): the least work a
//! token endpoint can do here. One P-256 key is generated and parsed once at
//! start-up; every POST gets one RFC 9068-shaped ES256 JWT signed with
//! aws-lc-rs (the fastest signer measured on this machine) in the same JSON
//! shape as ficha's answer. No authentication, no store, no logging.
//!
//! Usage: ficha-bench-ceiling [ADDR]   (default 127.0.0.1:8090)

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::json;

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    header_b64: String,
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("parse the P-256 key");
        // RFC 7638 thumbprint of the public JWK as kid, like ficha.
        let point = key.public_key().as_ref(); // 0x04 || x || y
        let (x, y) = (B64.encode(&point[1..33]), B64.encode(&point[33..65]));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = B64.encode(digest(&SHA256, canonical.as_bytes()).as_ref());
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        let header_b64 = B64.encode(header.to_string());
        Signer { key, rng, header_b64 }
    }

    fn token(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).expect("random jti");
        let claims = json!({
            "iss": "http://127.0.0.1",
            "sub": "bench",
            "client_id": "bench",
            "aud": "http://127.0.0.1",
            "scope": "transaction",
            "iat": now,
            "exp": now + 1200,
            "jti": B64.encode(jti),
        });
        let payload = serde_json::to_vec(&claims).expect("claims");
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        out.push_str(&self.header_b64);
        out.push('.');
        B64.encode_string(&payload, &mut out);
        let sig = self.key.sign(&self.rng, out.as_bytes()).expect("sign");
        out.push('.');
        B64.encode_string(sig.as_ref(), &mut out);
        out
    }
}

async fn token(signer: Arc<Signer>, _body: Bytes) -> impl IntoResponse {
    let body = json!({
        "access_token": signer.token(),
        "token_type": "Bearer",
        "expires_in": 1200,
        "scope": "transaction",
    })
    .to_string();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body,
    )
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let signer = Arc::new(Signer::new());
    let handler = {
        let signer = signer.clone();
        move |body: Bytes| token(signer.clone(), body)
    };
    let app = Router::new()
        .route("/oauth2/token", post(handler.clone()))
        .route("/token", post(handler));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("bind");
    eprintln!("ceiling listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
