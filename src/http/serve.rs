//! The serve loop: accepts connections and serves HTTP/1.1 on each with
//! hyper, under the limits of SPEC §9 "Slow and large input" that
//! `axum::serve` lacks (it has no header or idle timeout and no cap on
//! connections; the router's `TimeoutLayer` starts only once a request's
//! headers are in):
//!
//! - a request's headers must arrive within `header_timeout`, counted
//!   from the accept for a connection's first request and from the
//!   request's first byte after that;
//! - a connection with no request running and no byte moving for
//!   `idle_timeout` is closed; one whose handler runs is never cut;
//! - a request head over [`MAX_HEADER_BYTES`] is answered 431;
//! - at most `max_connections` are served at once: the permit is taken
//!   before `accept`, so the rest wait in the kernel's backlog;
//! - on stop, no more connections are accepted and those open finish
//!   their requests (idle ones close at once).
//!
//! The loop is generic over the accepted stream ([`Listener`]). With TLS
//! ([`serve_tls`]) the handshake runs in the connection's task over the
//! [`Tracked`] socket, inside the header deadline, so a client that never
//! finishes it is closed like one that never sends its headers; a failed
//! handshake (plain HTTP on the TLS port, say) closes that connection and
//! is logged at debug.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::Service as _;

use super::watchdog::{Activity, Expiry, Limits, Tracked};

/// The largest request head (request line and headers) served; a larger
/// one is answered 431 (SPEC §9).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// hyper's read and write buffers per connection: bounds what a slow
/// client can make the server hold (hyper's default is ~400 KiB).
const MAX_BUF_BYTES: usize = 64 * 1024;

/// How long the loop waits after an accept error such as `EMFILE`
/// before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// The edge's limits on slow and many connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed for a request's headers (`http_header_timeout_secs`).
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection is kept (`http_idle_timeout_secs`).
    pub idle_timeout: Duration,
    /// Connections served at once (`max_connections`).
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// The largest timeout accepted, a day: longer is a typo.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The most connections accepted as a limit.
const MAX_CONNECTIONS: usize = 1_000_000;

impl HttpSettings {
    /// Refuses zero (which would close or refuse every connection) and
    /// absurd values, naming the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("http_header_timeout_secs", self.header_timeout),
            ("http_idle_timeout_secs", self.idle_timeout),
        ] {
            anyhow::ensure!(
                !value.is_zero() && value <= MAX_TIMEOUT,
                "{name} must be between 1 and {} seconds",
                MAX_TIMEOUT.as_secs()
            );
        }
        anyhow::ensure!(
            (1..=MAX_CONNECTIONS).contains(&self.max_connections),
            "max_connections must be between 1 and {MAX_CONNECTIONS}"
        );
        Ok(())
    }
}

/// A source of accepted connections and their peers' addresses.
pub trait Listener: Send + 'static {
    /// The accepted stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Accepts the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Listener for TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, SocketAddr)> {
        TcpListener::accept(self).await
    }
}

/// Serves `router` on `listener` until `stop` completes, then stops
/// accepting and waits for open connections to finish their requests.
pub async fn serve<L: Listener>(
    listener: L,
    router: Router,
    settings: HttpSettings,
    stop: impl Future<Output = ()> + Send,
) {
    serve_with(listener, None, router, settings, stop).await;
}

/// [`serve`], speaking TLS through `tls` on every connection.
pub async fn serve_tls<L: Listener>(
    listener: L,
    tls: TlsAcceptor,
    router: Router,
    settings: HttpSettings,
    stop: impl Future<Output = ()> + Send,
) {
    serve_with(listener, Some(tls), router, settings, stop).await;
}

async fn serve_with<L: Listener>(
    mut listener: L,
    tls: Option<TlsAcceptor>,
    router: Router,
    settings: HttpSettings,
    stop: impl Future<Output = ()> + Send,
) {
    let mut builder = http1::Builder::new();
    builder
        // Ours is in the watchdog; hyper's would also close idle
        // keep-alive connections at the header timeout.
        .header_read_timeout(None)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    let builder = Arc::new(builder);
    let limits = Limits {
        header_timeout: settings.header_timeout,
        idle_timeout: settings.idle_timeout,
    };
    let permits = Arc::new(Semaphore::new(
        settings.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (io, peer, permit) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = accept_next(&mut listener, &permits) => accepted,
        };
        tokio::spawn(serve_connection(Connection {
            io,
            peer,
            tls: tls.clone(),
            router: router.clone(),
            builder: builder.clone(),
            limits,
            watcher: graceful.watcher(),
            _permit: permit,
        }));
    }
    // Closing the listening socket refuses new connections at once.
    drop(listener);
    graceful.shutdown().await;
}

/// Waits for a connection slot, then for a connection. Accept errors are
/// logged and retried: a full file table must not end the server.
async fn accept_next<L: Listener>(
    listener: &mut L,
    permits: &Arc<Semaphore>,
) -> (L::Io, SocketAddr, OwnedSemaphorePermit) {
    let Ok(permit) = permits.clone().acquire_owned().await else {
        // The semaphore is never closed.
        return std::future::pending().await;
    };
    loop {
        match listener.accept().await {
            Ok((io, peer)) => return (io, peer, permit),
            // The peer gave up before we accepted: nothing to wait for.
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(error = %e, "connection failed before accept");
            }
            Err(e) => {
                tracing::error!(error = %e, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection and what serving it needs.
struct Connection<I> {
    io: I,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    builder: Arc<http1::Builder>,
    limits: Limits,
    watcher: Watcher,
    /// Held until the connection ends, freeing a slot.
    _permit: OwnedSemaphorePermit,
}

async fn serve_connection<I>(c: Connection<I>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    // Tracked under TLS: handshake and record bytes count as activity, and
    // the header clock that started at accept bounds the handshake too.
    let io = Tracked::new(c.io, activity.clone());
    let http = Http {
        peer: c.peer,
        router: c.router,
        builder: c.builder,
        watcher: c.watcher,
        activity: activity.clone(),
    };
    let served = async move {
        match c.tls {
            None => http.serve(io).await,
            Some(acceptor) => match acceptor.accept(io).await {
                Ok(stream) => http.serve(stream).await,
                // A scanner, a client that distrusts the certificate, or
                // plain HTTP on this port: that connection's problem only.
                Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
            },
        }
    };
    tokio::select! {
        () = served => {}
        why = activity.expired(c.limits) => {
            // Dropping the connection closes the socket; no handler is
            // running (the watchdog waits while one does).
            match why {
                Expiry::HeaderTimeout => tracing::debug!("closing a connection: request headers too slow"),
                Expiry::Idle => tracing::debug!("closing an idle connection"),
            }
        }
    }
}

/// What serving HTTP/1.1 on an established stream needs.
struct Http {
    peer: SocketAddr,
    router: Router,
    builder: Arc<http1::Builder>,
    watcher: Watcher,
    activity: Arc<Activity>,
}

impl Http {
    async fn serve<S>(self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let router = self.router;
        let requests = self.activity;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // The `Peer` extractor reads the address from here, as it did
            // from `axum::serve`'s connect info.
            req.extensions_mut().insert(ConnectInfo(peer));
            let running = requests.begin_request();
            let call = router.clone().call(req);
            async move {
                let response = call.await;
                drop(running);
                response
            }
        });
        let conn = self
            .watcher
            .watch(self.builder.serve_connection(TokioIo::new(io), service));
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}
