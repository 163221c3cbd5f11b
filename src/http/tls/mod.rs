//! Native TLS for `serve` (SPEC §10): the served certificate and key, the
//! rustls server configuration (TLS 1.2 and 1.3, ALPN `http/1.1`, the
//! aws-lc-rs provider) and their reload on `SIGHUP`.
//!
//! rustls asks [`TlsCerts`] for the pair at each handshake, and a reload
//! swaps the pair behind it: open connections keep the session they
//! negotiated, new ones get the new certificate. A pair that fails to
//! load never replaces the one being served. The handshake itself runs in
//! the connection's task, under the header deadline (`serve.rs`).

mod load;

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use super::Metrics;
use crate::oauth::Clock;

pub use load::{load_pair, LoadedPair, TlsPaths};

/// The only application protocol served: hyper here speaks HTTP/1.1.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The pair being served and where to read its replacement.
pub struct TlsCerts {
    paths: TlsPaths,
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for TlsCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCerts")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for TlsCerts {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl TlsCerts {
    /// Loads the pair at `paths` (see [`load_pair`]).
    pub fn load(paths: TlsPaths, now: i64) -> anyhow::Result<(Arc<Self>, LoadedPair)> {
        let pair = load_pair(&paths, now)?;
        let certs = Arc::new(TlsCerts {
            paths,
            current: ArcSwap::new(pair.certified.clone()),
        });
        Ok((certs, pair))
    }

    /// Reads the pair again from the same paths and serves it to new
    /// connections; on error the current pair stays.
    pub fn reload(&self, now: i64) -> anyhow::Result<LoadedPair> {
        let pair = load_pair(&self.paths, now)?;
        self.current.store(pair.certified.clone());
        Ok(pair)
    }

    /// [`reload`](Self::reload), logged as one line and counted in
    /// `ficha_tls_reloads_total`. Returns whether the new pair is served.
    pub fn reload_logged(&self, now: i64, metrics: &Metrics) -> bool {
        match self.reload(now) {
            Ok(pair) => {
                metrics.tls_reloaded(true);
                tracing::info!(
                    subject = %pair.subject,
                    expires = %pair.expires(),
                    "TLS certificate reloaded"
                );
                true
            }
            Err(e) => {
                metrics.tls_reloaded(false);
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                tracing::error!(
                    "TLS reload failed, still serving the previous certificate: {}",
                    chain.join(": ")
                );
                false
            }
        }
    }

    /// The acceptor for the serve loop: TLS 1.2 and 1.3, HTTP/1.1 only,
    /// the certificate asked of `self` at each handshake.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// SIGHUPs received from the moment [`Hangups::listen`] ran; the default
/// value catches none.
#[derive(Debug, Default)]
pub struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts catching SIGHUP. Called before the server says it listens:
    /// a SIGHUP's default action ends the process, so one sent as soon as
    /// the address is printed must already find the handler in place.
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "cannot catch SIGHUP: TLS reload is unavailable");
                })
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups::default()
    }

    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            return signal.recv().await.is_some();
        }
        std::future::pending().await
    }
}

/// Reloads the TLS pair on each SIGHUP. Without TLS there is nothing to
/// reload, and the signal is noted rather than ending the server (its
/// default action), so `systemctl reload` is harmless either way.
pub async fn reload_on_hangup(
    mut hangups: Hangups,
    tls: Option<Arc<TlsCerts>>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
) {
    while hangups.next().await {
        match &tls {
            Some(certs) => {
                certs.reload_logged(clock.now(), &metrics);
            }
            None => tracing::info!("SIGHUP: TLS is off, nothing to reload"),
        }
    }
}
