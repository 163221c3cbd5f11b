//! Logging: one tracing subscriber, pretty or JSON, filtered by `RUST_LOG`.
//! Nothing logged anywhere in ficha carries a secret, an Authorization
//! header or a token: handlers record ids, scopes and `jti` only.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `json` selects machine-readable lines.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
