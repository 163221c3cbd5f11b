//! Where configuration becomes live objects: the store, the key ring, the
//! authenticator, the change-log poller and the router. Tests build the
//! application exactly as `ficha serve` does.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::audit::{AuditTrail, DEFAULT_AUDIT_CAPACITY};
use crate::config::Config;
use crate::http::tls::{Hangups, TlsCerts};
use crate::http::{self, AppState, HttpSettings, Metrics, Shared};
use crate::keys::{Alg, ClaimsKeys, KeyRing, KeyRingHandle, KeyState, KeyVault};
use crate::oauth::{Authenticator, Clock, Denylist, Mode, Policy, TokenService, TokenVerifier};
use crate::sandbox::Sandbox;
use crate::seeds;
use crate::sync::{Caches, Poller};

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    scheme: &'static str,
    tls: Option<Arc<TlsCerts>>,
    hangups: Hangups,
    stops: Stops,
    state: AppState,
    http: HttpSettings,
    sync: JoinHandle<()>,
    notices: Vec<String>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the application with the system clock.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(crate::oauth::SystemClock)).await
    }

    /// Builds the application with the given clock.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        config.http.validate()?;
        // Before the database: a bad pair is the quickest refusal.
        let tls = match &config.tls {
            Some(paths) => {
                let (certs, pair) = TlsCerts::load(paths.clone(), clock.now())?;
                tracing::info!(subject = %pair.subject, expires = %pair.expires(), "TLS certificate loaded");
                Some(certs)
            }
            None => None,
        };
        let production = config.mode == Mode::Production;
        let store = crate::store::connect(config.database()?, &config.pool).await?;
        let vault = KeyVault::new(&config.key_dir, config.kek.clone());
        let now = clock.now();
        let mut notices = Vec::new();

        if production {
            let present = seeds::present(&*store, now).await?;
            anyhow::ensure!(
                present.is_empty(),
                "refusing to start in production: the sandbox seed credential(s) {} exist in this database; delete them, rotate their secrets (`ficha client rotate-secret`) or change the seeded users' passwords (`ficha user set-password`)",
                present.join(", ")
            );
        } else {
            // ES256 signs by default; RS256 for clients set to it, such as
            // the Peinau seed (Peinau's own tokens are RS256).
            let keys = store.list_keys().await?;
            for alg in [Alg::Es256, Alg::Rs256] {
                if !keys
                    .iter()
                    .any(|k| k.alg == alg && k.state == KeyState::Active)
                {
                    let rec = vault.generate(&*store, alg, KeyState::Active, now).await?;
                    notices.push(format!(
                        "generated {alg} signing key {} in {}",
                        rec.kid,
                        vault.dir().display()
                    ));
                }
            }
            for seed in seeds::ensure_users(&*store, now).await? {
                notices.push(format!(
                    "seeded sandbox user ({}): username={} password={}",
                    seed.dialect, seed.username, seed.password
                ));
            }
            for seed in seeds::ensure(&*store, now).await? {
                if seed.public {
                    notices.push(format!(
                        "seeded sandbox client ({}): client_id={} (public client, no secret)",
                        seed.dialect, seed.client_id
                    ));
                } else {
                    notices.push(format!(
                        "seeded sandbox client ({}): client_id={} client_secret={} scopes=\"{}\"",
                        seed.dialect, seed.client_id, seed.secret, seed.scopes
                    ));
                }
            }
        }
        // Created in either mode: it signs nothing and nothing outside this
        // deployment depends on it, and a request must never create it. A
        // production deployment whose key directory is read-only still
        // starts; only sealing (Peinau's identifier) is refused then.
        let claims = match ClaimsKeys::ensure(&*store, &vault, now).await {
            Ok((claims, created)) => {
                if created {
                    tracing::info!("created the claims key");
                }
                claims
            }
            Err(e) if production => {
                tracing::warn!(
                    error.cause_chain = ?e,
                    "no claims key: requests with a value to seal are refused until one can be created"
                );
                ClaimsKeys::none()
            }
            Err(e) => return Err(e.context("Failed to load the claims key")),
        };
        let ring = KeyRing::load(&*store, &vault, now)
            .await
            .context("Failed to load the signing keys")?;
        anyhow::ensure!(
            ring.can_sign(),
            "no active ES256 signing key: create one with `ficha key generate` (keys live in {})",
            vault.dir().display()
        );
        let keys = Arc::new(KeyRingHandle::new(ring));

        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("Failed to listen on {}", config.bind))?;
        let addr = listener.local_addr()?;
        let issuer = config.issuer_at(addr);
        let policy = Policy {
            default_audience: config.audience.clone().unwrap_or_else(|| issuer.clone()),
            issuer: issuer.clone(),
            mode: config.mode,
            refresh_ttl: config.refresh_ttl,
            refresh_max_lifetime: config.refresh_max_lifetime,
        };
        let auth = Arc::new(Authenticator::new(store.clone(), config.auth.clone())?);
        let cursor = store.latest_change().await?;
        auth.mark_fresh(clock.now());
        // Read after the cursor: a revocation landing in between is in the
        // list or replayed from the change log, never lost.
        let denylist = Arc::new(Denylist::new(config.auth.max_staleness_secs));
        let now = clock.now();
        denylist.refresh(
            store
                .revoked_tokens(now)
                .await
                .context("Failed to load the revoked tokens")?,
            now,
        );
        let verifier = Arc::new(TokenVerifier::new(
            auth.clone(),
            keys.clone(),
            store.clone(),
            store.clone(),
            denylist.clone(),
            issuer.clone(),
        ));
        let tokens = Arc::new(TokenService::new(
            auth.clone(),
            keys.clone(),
            store.clone(),
            policy,
        ));
        // SPEC §6: the fault table is read by sandbox servers only; a
        // production server never loads or polls it.
        let sandbox = if production {
            None
        } else {
            let sandbox = Arc::new(Sandbox::new(
                config.capture_capacity,
                config.http.idle_timeout,
            ));
            sandbox.faults.replace(
                store
                    .list_faults()
                    .await
                    .context("Failed to load the sandbox faults")?,
            );
            Some(sandbox)
        };
        let audit = if config.audit_retention_days == 0 {
            Arc::new(AuditTrail::disabled())
        } else {
            let trail = Arc::new(AuditTrail::new(DEFAULT_AUDIT_CAPACITY));
            tokio::spawn(crate::audit::run_writer(
                trail.clone(),
                store.clone(),
                clock.clone(),
                config.audit_retention_days,
            ));
            trail
        };
        let state = AppState::new(Shared {
            tokens,
            verifier,
            store: store.clone(),
            keys: keys.clone(),
            clock: clock.clone(),
            metrics: Arc::new(Metrics::default()),
            mode: config.mode,
            issuer,
            dialects: Arc::new(config.dialect_paths.clone()),
            claims: Arc::new(claims),
            sandbox: sandbox.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            audit,
        });
        let poller = Poller::new(
            Caches {
                store,
                vault,
                keys,
                auth,
                denylist,
                clock,
                sandbox,
            },
            cursor,
        );
        let sync = tokio::spawn(poller.run(config.sync_interval));
        Ok(Application {
            listener,
            addr,
            scheme: config.scheme(),
            tls,
            hangups: Hangups::listen(),
            stops: Stops::listen(),
            state,
            http: config.http,
            sync,
            notices,
        })
    }

    /// What the first start of a sandbox did for its user, one line each:
    /// the keys it generated and the seeded credentials (the providers'
    /// published examples, so no secret of anyone's). The command line
    /// prints them on stdout; the library never prints.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it is served: `http://` or, with TLS, `https://` and the
    /// bound address.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The served TLS pair, to reload; `None` without TLS.
    pub fn tls(&self) -> Option<Arc<TlsCerts>> {
        self.tls.clone()
    }

    /// The handler state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests;
    /// SIGHUP reloads the TLS pair. Buffered audit records are written
    /// before it returns.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let audit = self.state.audit.clone();
        let store = self.state.store.clone();
        let reloads = tokio::spawn(crate::http::tls::reload_on_hangup(
            std::mem::take(&mut self.hangups),
            self.tls.clone(),
            self.state.metrics.clone(),
            self.state.clock.clone(),
        ));
        let stops = std::mem::take(&mut self.stops);
        let result = self.run_until(stops.recv()).await;
        reloads.abort();
        if audit.enabled() {
            audit.flush(&*store).await;
        }
        result
    }

    /// Serves until `stop` completes, then drains in-flight requests.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sandbox = self.state.sandbox.clone();
        let stop = async move {
            stop.await;
            // Open request streams never finish on their own; the drain
            // below waits for every response to end.
            if let Some(sandbox) = sandbox {
                sandbox.requests.close();
            }
        };
        let app = http::router(self.state);
        match &self.tls {
            Some(certs) => {
                let acceptor = certs.acceptor()?;
                http::serve_tls(self.listener, acceptor, app, self.http, stop).await;
            }
            None => http::serve(self.listener, app, self.http, stop).await,
        }
        self.sync.abort();
        Ok(())
    }
}

/// SIGINT and SIGTERM, caught from the moment [`Stops::listen`] ran:
/// before the server says it listens, so that a supervisor's stop sent
/// as soon as the address is printed drains the server instead of
/// meeting the signals' default action.
#[derive(Debug, Default)]
struct Stops {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Stops {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .filter_map(|kind| {
                    signal(kind)
                        .inspect_err(|e| tracing::warn!(error = %e, "cannot catch a stop signal"))
                        .ok()
                })
                .collect();
            Stops { signals }
        }
        #[cfg(not(unix))]
        Stops::default()
    }

    /// Completes at the first stop signal (never, if none can be caught).
    async fn recv(self) {
        #[cfg(unix)]
        {
            let waits = self.signals.into_iter().map(|mut s| {
                Box::pin(async move {
                    s.recv().await;
                })
            });
            let waits: Vec<_> = waits.collect();
            if waits.is_empty() {
                std::future::pending::<()>().await;
            }
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}
