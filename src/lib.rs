//! ficha, an OAuth2 token server for payment-wallet integrations.
//!
//! - `oauth` is the protocol core: typed requests, client authentication,
//!   grant and scope rules, minting; no HTTP, no SQL, time passed in.
//! - `keys` owns private key material: the ES256/RS256 key ring, the JWKS
//!   and the claims key that seals values tokens carry for the operator.
//! - `store` implements the storage ports (combined as `store::Store`) for
//!   SQLite and PostgreSQL; `store_error` is the error every port returns.
//! - `http` owns status codes, headers, extractors and the provider dialects
//!   (`http::dialect`, one adapter per provider over the one core);
//! - `audit` buffers issued tokens' records and writes them in batches.
//! - `sandbox` holds the sandbox-only fault injection and request capture.
//! - `sync` owns the change log and the poller that keeps every instance's
//!   caches (clients, keys, denylist, faults) coherent with the database.
//!   `config` loads one [`config::Config`] (every default, the merge of
//!   file, environment and flags); `startup` wires the rest into an
//!   [`startup::Application`]; `check` tells whether `serve` would start.
//!   `cli` parses the command line and drives them all (and writes shell
//!   completions and man pages from its definition); nothing else imports
//!   it.
#![forbid(unsafe_code)]

pub mod audit;
pub mod check;
pub mod cli;
pub mod config;
pub mod http;
pub mod keys;
pub mod oauth;
pub mod sandbox;
pub mod seeds;
pub mod startup;
pub mod store;
pub mod store_error;
pub mod sync;
pub mod telemetry;
