//! The sandbox's test aids (SPEC §6): per-client fault injection and the
//! capture of recent token requests. This module owns the fault types, the
//! in-memory fault set the token path consults, the fault table's storage
//! port, and the bounded, masked request log; `http` applies the faults at
//! the edge and serves `/sandbox/*`, `store` implements the port, and
//! `sync` reloads the set when the change log says the table changed.
//! Nothing here is built, loaded or polled in production mode. `oauth`
//! does not depend on this module (faults are applied around the core's
//! one call, never inside it), while this module uses `oauth`'s client ids
//! and store error.

mod capture;
mod fault;

pub use capture::{
    mask_body, mask_header, masked_headers, BodyFormat, CapturedRequest, RequestLog,
    DEFAULT_CAPTURE_CAPACITY, MASK,
};
pub use fault::{FaultKind, FaultRecord, FaultSet, FaultStatus, FaultStore, InvalidFault, Phase};

/// What a sandbox server holds for its test aids.
#[derive(Debug)]
pub struct Sandbox {
    /// The faults in force, as loaded from the database.
    pub faults: FaultSet,
    /// The most recent token requests, masked.
    pub requests: RequestLog,
}

impl Sandbox {
    /// An empty fault set and a request log of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Sandbox {
            faults: FaultSet::default(),
            requests: RequestLog::new(capacity),
        }
    }
}
