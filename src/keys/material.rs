//! Private key material: generation with p256 (ES256) and aws-lc-rs (RS256),
//! PKCS#8 PEM encoding, public JWKs and their RFC 7638 thumbprints, and the
//! parsed-once aws-lc-rs signers. Nothing outside `keys/` sees a private key.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Alg;

/// A public key as published in the JWKS (RFC 7517, RFC 7518 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// `EC` or `RSA`.
    pub kty: String,
    /// The key id: the RFC 7638 thumbprint.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// EC curve.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crv: Option<String>,
    /// EC x coordinate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub e: Option<String>,
}

/// A freshly generated key: its PKCS#8 DER (zeroized on drop) and its JWK.
pub struct GeneratedKey {
    /// PKCS#8 DER of the private key.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// The public half.
    pub jwk: PublicJwk,
}

/// Generates a key for `alg`.
pub fn generate(alg: Alg) -> anyhow::Result<GeneratedKey> {
    let pkcs8 = match alg {
        Alg::Es256 => {
            let sk = p256::SecretKey::random(&mut rand::rngs::OsRng);
            Zeroizing::new(sk.to_pkcs8_der()?.as_bytes().to_vec())
        }
        Alg::Rs256 => {
            let kp = RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| anyhow::anyhow!("Failed to generate an RSA key"))?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
                .map_err(|_| anyhow::anyhow!("Failed to encode an RSA key"))?;
            Zeroizing::new(der.as_ref().to_vec())
        }
    };
    let jwk = public_jwk(alg, &pkcs8)?;
    Ok(GeneratedKey { pkcs8, jwk })
}

/// Derives the public JWK, with its thumbprint as kid, from PKCS#8 DER.
pub fn public_jwk(alg: Alg, pkcs8: &[u8]) -> anyhow::Result<PublicJwk> {
    let mut jwk = match alg {
        Alg::Es256 => {
            let sk = p256::SecretKey::from_pkcs8_der(pkcs8)
                .map_err(|_| anyhow::anyhow!("not a P-256 PKCS#8 key"))?;
            let point = sk.public_key().to_encoded_point(false);
            PublicJwk {
                kty: "EC".into(),
                kid: String::new(),
                use_: "sig".into(),
                alg: "ES256".into(),
                crv: Some("P-256".into()),
                x: point.x().map(|x| B64.encode(x)),
                y: point.y().map(|y| B64.encode(y)),
                n: None,
                e: None,
            }
        }
        Alg::Rs256 => {
            let kp = RsaKeyPair::from_pkcs8(pkcs8)
                .map_err(|_| anyhow::anyhow!("not an RSA PKCS#8 key"))?;
            let pk = kp.public_key();
            let comps: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = pk.into();
            PublicJwk {
                kty: "RSA".into(),
                kid: String::new(),
                use_: "sig".into(),
                alg: "RS256".into(),
                crv: None,
                x: None,
                y: None,
                n: Some(B64.encode(strip_zeros(&comps.n))),
                e: Some(B64.encode(strip_zeros(&comps.e))),
            }
        }
    };
    jwk.kid = thumbprint(&jwk)?;
    Ok(jwk)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b
        .iter()
        .position(|&x| x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    &b[first..]
}

/// The RFC 7638 thumbprint: SHA-256 over the required members in
/// lexicographic order, without whitespace, base64url-encoded.
pub fn thumbprint(jwk: &PublicJwk) -> anyhow::Result<String> {
    let canonical = match jwk.kty.as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.crv.as_deref().unwrap_or_default(),
            jwk.x.as_deref().unwrap_or_default(),
            jwk.y.as_deref().unwrap_or_default()
        ),
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk.e.as_deref().unwrap_or_default(),
            jwk.n.as_deref().unwrap_or_default()
        ),
        other => anyhow::bail!("unsupported key type {other}"),
    };
    Ok(B64.encode(Sha256::digest(canonical.as_bytes())))
}

/// PKCS#8 DER to PEM text (`PRIVATE KEY`).
pub fn to_pem(pkcs8: &[u8]) -> anyhow::Result<Zeroizing<String>> {
    let doc = p256::pkcs8::SecretDocument::try_from(pkcs8)
        .map_err(|_| anyhow::anyhow!("not a PKCS#8 document"))?;
    Ok(doc.to_pem("PRIVATE KEY", LineEnding::LF)?)
}

/// PEM text (`PRIVATE KEY`) to PKCS#8 DER.
pub fn from_pem(pem: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let (label, doc) = p256::pkcs8::SecretDocument::from_pem(pem)
        .map_err(|_| anyhow::anyhow!("not a PEM PKCS#8 private key"))?;
    anyhow::ensure!(
        label == "PRIVATE KEY",
        "expected a PRIVATE KEY PEM block, found {label}"
    );
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key parsed once into aws-lc-rs, with its JWS header pre-encoded.
/// Parsing on every signature would cost ~14 µs (aws-lc-rs) to ~330 µs (p256);
/// see `BENCHMARKS.md`.
pub struct SigningKey {
    kid: String,
    alg: Alg,
    header_b64: String,
    signer: Signer,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses PKCS#8 DER into a signer whose header is `{alg, typ: at+jwt, kid}`.
    pub fn from_pkcs8(alg: Alg, kid: &str, pkcs8: &[u8]) -> anyhow::Result<Self> {
        let signer = match alg {
            Alg::Es256 => Signer::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| anyhow::anyhow!("Failed to parse an ES256 key: {e}"))?,
            ),
            Alg::Rs256 => Signer::Rsa(
                RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|e| anyhow::anyhow!("Failed to parse an RS256 key: {e}"))?,
            ),
        };
        // RFC 9068 §2.1: typ "at+jwt".
        let header = serde_json::json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid});
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            header_b64: B64.encode(serde_json::to_vec(&header)?),
            signer,
            rng: SystemRandom::new(),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Signs with a header naming `kid` instead of this key's own (the
    /// sandbox's `wrong-kid` fault): the signature is genuine, but no
    /// verifier can find the key by that id.
    pub fn sign_with_kid<T: Serialize>(&self, kid: &str, claims: &T) -> anyhow::Result<String> {
        let header = serde_json::json!({"alg": self.alg.as_str(), "typ": "at+jwt", "kid": kid});
        self.sign_with_header(&B64.encode(serde_json::to_vec(&header)?), claims)
    }

    /// Signs with a caller-supplied, already encoded header (sandbox faults).
    pub fn sign_with_header<T: Serialize>(
        &self,
        header_b64: &str,
        claims: &T,
    ) -> anyhow::Result<String> {
        let payload = serde_json::to_vec(claims)?;
        let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 100);
        out.push_str(header_b64);
        out.push('.');
        B64.encode_string(&payload, &mut out);
        let sig = match &self.signer {
            Signer::Ec(k) => k
                .sign(&self.rng, out.as_bytes())
                .map_err(|_| anyhow::anyhow!("ES256 signing failed"))?
                .as_ref()
                .to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    out.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| anyhow::anyhow!("RS256 signing failed"))?;
                sig
            }
        };
        out.push('.');
        B64.encode_string(&sig, &mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_es256_key_round_trips_through_pem_and_keeps_its_thumbprint() {
        let k = generate(Alg::Es256).unwrap();
        let pem = to_pem(&k.pkcs8).unwrap();
        let der = from_pem(&pem).unwrap();
        assert_eq!(public_jwk(Alg::Es256, &der).unwrap(), k.jwk);
        assert_eq!(k.jwk.kid.len(), 43);
    }

    #[test]
    fn rfc7638_example_thumbprint_matches() {
        // RFC 7638 §3.1 uses an RSA key; its thumbprint is fixed by the RFC.
        let jwk = PublicJwk {
            kty: "RSA".into(),
            kid: String::new(),
            use_: "sig".into(),
            alg: "RS256".into(),
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn an_ec_key_of_rfc_7517_has_its_known_thumbprint() {
        // RFC 7517 Appendix A.2's P-256 private key. The expected kid was
        // computed independently: python3 hashlib.sha256 over the canonical
        // JSON {"crv":"P-256","kty":"EC","x":"MKBC...","y":"4Etl..."} of its
        // Appendix A.1 public key, base64url without padding.
        let d = B64
            .decode("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE")
            .unwrap();
        let secret = p256::SecretKey::from_slice(&d).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let jwk = public_jwk(Alg::Es256, der.as_bytes()).unwrap();
        assert_eq!(
            jwk.x.as_deref(),
            Some("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4")
        );
        assert_eq!(
            jwk.y.as_deref(),
            Some("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM")
        );
        assert_eq!(jwk.kid, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s");
    }
}
