//! What the TLS tests need on the client side: a CA and server
//! certificates made here with rcgen, TLS clients that trust that CA
//! (reqwest, tokio-rustls), and a bare HTTP/1.1 exchange over one kept-open
//! TLS connection.

use std::path::Path;
use std::sync::Arc;

use ficha::http::tls::TlsPaths;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate authority made for one test.
pub struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub pem: String,
    der: CertificateDer<'static>,
}

/// A server certificate and its key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }

    /// A certificate for 127.0.0.1 and localhost named `cn`.
    pub fn issue(&self, cn: &str) -> Leaf {
        self.issue_until(cn, None)
    }

    /// The same, valid until `not_after` (rcgen's far-off default if `None`).
    pub fn issue_until(&self, cn: &str, not_after: Option<time::OffsetDateTime>) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if let Some(t) = not_after {
            params.not_before = t - time::Duration::days(30);
            params.not_after = t;
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// Writes the CA certificate for curl's `--cacert`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.pem).unwrap();
    }
}

impl Leaf {
    /// Writes the chain and key where `paths` says.
    pub fn write(&self, paths: &TlsPaths) {
        std::fs::write(&paths.cert, &self.cert_pem).unwrap();
        std::fs::write(&paths.key, &self.key_pem).unwrap();
    }
}

/// A rustls client configuration trusting `cas`, for `versions`.
pub fn client_config(
    cas: &[&Ca],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(ca.der.clone()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// A reqwest client that trusts `ca` (and no public root).
pub fn reqwest_with(ca: &Ca) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(&[ca], rustls::DEFAULT_VERSIONS))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A TLS connection to `port` on 127.0.0.1.
pub async fn connect(port: u16, config: rustls::ClientConfig) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The certificate the server presented on `stream`.
pub fn served_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// One keep-alive `GET path` on `stream`: the status and the body.
pub async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    (status, body)
}
