//! The state every handler shares.

use std::sync::Arc;

use crate::audit::AuditTrail;
use crate::keys::{ClaimsKeys, KeyRingHandle};
use crate::oauth::{Clock, Mode, TokenService, TokenVerifier};
use crate::sandbox::Sandbox;
use crate::store::Store;

use super::client_addr::TrustedProxies;
use super::dialect::DialectPaths;
use super::metrics::Metrics;

/// Shared handler state. axum clones it for every request, so it is one
/// `Arc` (a single reference-count increment) rather than a struct of them.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler shares, behind [`AppState`].
pub struct Shared {
    /// The token service (authentication, grants, minting).
    pub tokens: Arc<TokenService>,
    /// Verification, introspection and revocation of issued tokens.
    pub verifier: Arc<TokenVerifier>,
    /// The database.
    pub store: Arc<dyn Store>,
    /// The current key ring.
    pub keys: Arc<KeyRingHandle>,
    /// The clock; the only source of `now` for handlers.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Sandbox or production.
    pub mode: Mode,
    /// The issuer URL.
    pub issuer: String,
    /// Where each provider dialect is mounted.
    pub dialects: Arc<DialectPaths>,
    /// Seals values a token carries for the operator only.
    pub claims: Arc<ClaimsKeys>,
    /// Fault injection and request capture; `None` in production, where
    /// neither exists.
    pub sandbox: Option<Arc<Sandbox>>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// The audit trail's buffer of issued tokens.
    pub audit: Arc<AuditTrail>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("mode", &self.mode)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}
