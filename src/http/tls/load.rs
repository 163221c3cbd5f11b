//! Reading a TLS pair from disk: a PEM certificate chain and its private
//! key (PKCS#8, SEC1 or PKCS#1), checked to belong together and to be
//! unexpired. `serve` at start, a `SIGHUP` reload and `ficha config check`
//! all load through [`load_pair`], so they accept and refuse the same files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_cert::der::Decode as _;

/// Where the certificate chain and its key are read from (`tls_cert`,
/// `tls_key`); read again, from the same paths, on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// The PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The PEM private key of the first certificate.
    pub key: PathBuf,
}

impl TlsPaths {
    /// The pair from `--tls-cert` and `--tls-key` (or their variables or
    /// config-file keys): both or neither.
    pub fn from_parts(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<Option<Self>> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(TlsPaths { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--tls-cert (tls_cert) was given without --tls-key (tls_key): TLS needs both"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--tls-key (tls_key) was given without --tls-cert (tls_cert): TLS needs both"
            ),
        }
    }
}

/// A loaded pair, ready to serve, and what the logs say about it.
#[derive(Debug, Clone)]
pub struct LoadedPair {
    /// The chain and the signing key rustls serves.
    pub(crate) certified: Arc<CertifiedKey>,
    /// The server certificate's subject (RFC 4514).
    pub subject: String,
    /// The server certificate's `notAfter`, in Unix seconds.
    pub not_after: i64,
}

impl LoadedPair {
    /// `notAfter` as RFC 3339, for log lines and findings.
    pub fn expires(&self) -> String {
        rfc3339(self.not_after)
    }
}

/// Reads and checks the pair at `paths`: the chain parses, the key parses
/// and matches the first certificate, and that certificate has not
/// expired at `now` (Unix seconds). Errors name the file, never its
/// contents.
pub fn load_pair(paths: &TlsPaths, now: i64) -> anyhow::Result<LoadedPair> {
    let cert_path = paths.cert.as_path();
    let key_path = paths.key.as_path();
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(e, "certificate", cert_path))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "the TLS certificate file {} holds no PEM certificate",
        cert_path.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| pem_error(e, "private key", key_path))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "the TLS private key {} does not match the certificate {}",
            key_path.display(),
            cert_path.display()
        ),
        rustls::Error::InvalidCertificate(e) => anyhow::anyhow!(
            "the TLS certificate {} does not parse: {e}",
            cert_path.display()
        ),
        other => anyhow::anyhow!(
            "the TLS private key {} is not a usable RSA, ECDSA or Ed25519 key: {other}",
            key_path.display()
        ),
    })?;
    let (subject, not_after) = certified
        .end_entity_cert()
        .map_err(anyhow::Error::from)
        .and_then(describe)
        .with_context(|| format!("the TLS certificate {} does not parse", cert_path.display()))?;
    anyhow::ensure!(
        not_after > now,
        "the TLS certificate {} ({subject}) expired at {}",
        cert_path.display(),
        rfc3339(not_after)
    );
    Ok(LoadedPair {
        certified: Arc::new(certified),
        subject,
        not_after,
    })
}

/// One clear line for a PEM file that cannot be used.
fn pem_error(e: pem::Error, what: &str, path: &Path) -> anyhow::Error {
    let path = path.display();
    match e {
        pem::Error::Io(e) => anyhow::anyhow!("Failed to read the TLS {what} {path}: {e}"),
        pem::Error::NoItemsFound => {
            anyhow::anyhow!("the TLS {what} file {path} holds no PEM {what}")
        }
        other => anyhow::anyhow!("the TLS {what} file {path} is not valid PEM: {other}"),
    }
}

/// The certificate's subject and `notAfter` (Unix seconds).
fn describe(cert: &CertificateDer<'_>) -> anyhow::Result<(String, i64)> {
    let parsed = x509_cert::Certificate::from_der(cert.as_ref())?;
    let tbs = parsed.tbs_certificate;
    let not_after = i64::try_from(tbs.validity.not_after.to_unix_duration().as_secs())?;
    Ok((tbs.subject.to_string(), not_after))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
    use tempfile::TempDir;

    const NOW: i64 = 1_800_000_000;

    /// A self-signed certificate for `key`, and the files written.
    fn write_pair(dir: &TempDir, key: &rcgen::KeyPair, key_pem: &str) -> TlsPaths {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ficha test");
        let cert = params.self_signed(key).unwrap();
        let paths = TlsPaths {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&paths.cert, cert.pem()).unwrap();
        std::fs::write(&paths.key, key_pem).unwrap();
        paths
    }

    /// The key inside a PKCS#8 wrapper: PKCS#1 for RSA.
    fn unwrap_pkcs8(key: &rcgen::KeyPair) -> Vec<u8> {
        let der = key.serialize_der();
        p256::pkcs8::PrivateKeyInfo::try_from(der.as_slice())
            .unwrap()
            .private_key
            .to_vec()
    }

    fn pem_of(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn a_pkcs8_key_loads_and_the_subject_and_expiry_are_read() {
        let dir = TempDir::new().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let paths = write_pair(&dir, &key, &key.serialize_pem());
        assert!(std::fs::read_to_string(&paths.key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        let pair = load_pair(&paths, NOW).unwrap();
        assert_eq!(pair.subject, "CN=ficha test");
        // rcgen's default notAfter is the year 4096.
        assert!(
            pair.expires().starts_with("4096-01-01"),
            "{}",
            pair.expires()
        );
    }

    #[test]
    fn a_sec1_ec_key_loads() {
        let dir = TempDir::new().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let secret = p256::SecretKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        let sec1 = secret.to_sec1_pem(Default::default()).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let paths = write_pair(&dir, &key, &sec1);
        load_pair(&paths, NOW).unwrap();
        // The same key as PKCS#8 through p256, for symmetry.
        let pkcs8 = secret.to_pkcs8_pem(Default::default()).unwrap();
        std::fs::write(&paths.key, pkcs8.as_bytes()).unwrap();
        load_pair(&paths, NOW).unwrap();
    }

    #[test]
    fn a_pkcs1_rsa_key_loads() {
        let dir = TempDir::new().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let pkcs1 = pem_of("RSA PRIVATE KEY", &unwrap_pkcs8(&key));
        let paths = write_pair(&dir, &key, &pkcs1);
        load_pair(&paths, NOW).unwrap();
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = TempDir::new().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let paths = write_pair(&dir, &key, &other.serialize_pem());
        let e = format!("{:#}", load_pair(&paths, NOW).unwrap_err());
        assert!(e.contains("does not match"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
    }

    #[test]
    fn unreadable_and_non_pem_files_are_named_in_one_line() {
        let dir = TempDir::new().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let paths = write_pair(&dir, &key, &key.serialize_pem());
        let missing = TlsPaths {
            cert: dir.path().join("nope.pem"),
            key: paths.key.clone(),
        };
        let e = format!("{:#}", load_pair(&missing, NOW).unwrap_err());
        assert!(
            e.contains("nope.pem") && e.starts_with("Failed to read"),
            "{e}"
        );
        std::fs::write(&paths.key, "not a key\n").unwrap();
        let e = format!("{:#}", load_pair(&paths, NOW).unwrap_err());
        assert!(
            e.contains("key.pem") && e.contains("no PEM private key"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let dir = TempDir::new().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let paths = write_pair(&dir, &key, &key.serialize_pem());
        let e = format!(
            "{:#}",
            load_pair(&paths, i64::from(i32::MAX) * 100).unwrap_err()
        );
        assert!(e.contains("expired at 4096-01-01"), "{e}");
    }

    #[test]
    fn the_pair_goes_together() {
        let some = || Some(PathBuf::from("x.pem"));
        assert!(TlsPaths::from_parts(None, None).unwrap().is_none());
        assert!(TlsPaths::from_parts(some(), some()).unwrap().is_some());
        let e = TlsPaths::from_parts(some(), None).unwrap_err().to_string();
        assert!(e.contains("--tls-key"), "{e}");
        let e = TlsPaths::from_parts(None, some()).unwrap_err().to_string();
        assert!(e.contains("--tls-cert"), "{e}");
    }
}
