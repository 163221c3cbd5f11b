//! The sandbox's test aids (SPEC §6): per-client fault injection and the
//! capture of recent token requests. This module owns the fault types, the
//! in-memory fault set the token path consults, the fault table's storage
//! port, and the bounded, masked request log with its live feed; `http`
//! applies the faults at the edge and serves `/sandbox/*` (the console and
//! its event stream among them), `store` implements the port, and `sync`
//! reloads the set when the change log says the table changed. Nothing
//! here is built, loaded or polled in production mode. `oauth` does not
//! depend on this module (faults are applied around the core's one call,
//! never inside it), while this module uses `oauth`'s client ids and store
//! error.

mod capture;
mod fault;
mod feed;
mod mask;

use std::time::Duration;

pub use capture::{CapturedRequest, RequestLog, DEFAULT_CAPTURE_CAPACITY};
pub use fault::{
    FaultKind, FaultRecord, FaultSet, FaultStatus, FaultStore, InvalidFault, Phase, MAX_DELAY_MS,
};
pub use feed::{Feed, Subscription, FEED_CAPACITY};
pub use mask::{mask_body, mask_header, masked_headers, BodyFormat, MASK};

/// What a sandbox server holds for its test aids.
#[derive(Debug)]
pub struct Sandbox {
    /// The faults in force, as loaded from the database.
    pub faults: FaultSet,
    /// The most recent token requests, masked.
    pub requests: RequestLog,
    /// How often a quiet request stream sends a keep-alive comment: more
    /// often than the serve loop's idle timeout, which would otherwise cut
    /// it.
    pub stream_keep_alive: Duration,
}

/// The request stream's keep-alive interval when the idle timeout allows.
pub const STREAM_KEEP_ALIVE: Duration = Duration::from_secs(15);

impl Sandbox {
    /// An empty fault set and a request log of `capacity` entries, for a
    /// server closing connections idle for `idle_timeout`.
    pub fn new(capacity: usize, idle_timeout: Duration) -> Self {
        Sandbox {
            faults: FaultSet::default(),
            requests: RequestLog::new(capacity),
            // Twice per idle timeout at least, so one late tick is harmless.
            stream_keep_alive: STREAM_KEEP_ALIVE
                .min(idle_timeout / 2)
                .max(Duration::from_millis(100)),
        }
    }
}
