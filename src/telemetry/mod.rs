//! Logging: one tracing subscriber, pretty or JSON, filtered by `RUST_LOG`,
//! written to stderr in batches by a background thread ([`batch`]) so that
//! the per-token audit record never puts a write syscall on the request
//! path. Nothing logged
//! anywhere in ficha carries a secret, an Authorization header or a token:
//! handlers record ids, scopes and `jti` only. Colour codes are written
//! only to a terminal: a log file or a pipe gets plain text (SPEC §10).

mod audit_line;
mod batch;
mod issued;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

pub use audit_line::AUDIT_TARGET;
pub use batch::FlushGuard;
pub use issued::{token_issued, IssuedLine};

/// Whether `pretty` lines may carry ANSI colours: only when stderr is a
/// terminal and `NO_COLOR` (<https://no-color.org>) is unset or empty.
pub fn colours_wanted() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Installs the global subscriber; `json` selects machine-readable lines.
/// Keep the returned guard alive until exit: dropping it flushes the logs.
pub fn init(json: bool) -> Option<FlushGuard> {
    match batch::batch_writer(std::io::stderr()) {
        Ok((writer, guard)) => {
            let installed = install(json, writer.clone());
            if installed && json {
                issued::write_directly_to(writer);
            }
            installed.then_some(guard)
        }
        // No thread for the writer: lines go straight to stderr instead.
        Err(_) => {
            install(json, std::io::stderr);
            None
        }
    }
}

/// Installs the subscriber over `writer`; false if one was installed
/// already (a second initialisation, in tests, keeps the first).
fn install<W>(json: bool, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && colours_wanted())
        .with_writer(writer);
    let installed = if json {
        builder
            .json()
            .event_format(audit_line::AuditLineFirst {
                inner: tracing_subscriber::fmt::format().json(),
            })
            .try_init()
    } else {
        builder.try_init()
    };
    installed.is_ok()
}

/// What the formatters' tests log into and read back.
#[cfg(test)]
mod test_lines {
    use std::sync::{Arc, Mutex};

    /// A log output in memory, shared by its clones.
    #[derive(Clone, Default)]
    pub(super) struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Lines {
        /// Everything written so far.
        pub(super) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }
}
