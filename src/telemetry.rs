//! Logging: one tracing subscriber, pretty or JSON, filtered by `RUST_LOG`,
//! written to stderr by a background thread so that the per-token audit
//! record never puts a write syscall on the request path. Nothing logged
//! anywhere in ficha carries a secret, an Authorization header or a token:
//! handlers record ids, scopes and `jti` only. Colour codes are written
//! only to a terminal: a log file or a pipe gets plain text (SPEC §10).

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Whether `pretty` lines may carry ANSI colours: only when stderr is a
/// terminal and `NO_COLOR` (<https://no-color.org>) is unset or empty.
pub fn colours_wanted() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Installs the global subscriber; `json` selects machine-readable lines.
/// Keep the returned guard alive until exit: dropping it flushes the logs.
pub fn init(json: bool) -> Option<WorkerGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Not lossy: audit records are worth back-pressure rather than loss.
    // Buffered: the worker flushes whenever its queue runs dry, so under
    // load many lines share one write syscall, and at rest none waits.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && colours_wanted())
        .with_writer(writer);
    // A second initialisation (tests) keeps the first subscriber.
    let installed = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    installed.ok().map(|()| guard)
}
