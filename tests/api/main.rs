//! ficha's one integration test binary: a real server per test, driven
//! over HTTP and through the real CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod auth_verify;
mod cli;
mod cluster;
mod dialects;
mod fegora;
mod grants;
mod interop;
mod introspect;
mod keys;
mod logging;
mod nginx;
mod outage;
mod production;
mod props;
mod revoke;
mod sandbox;
mod token;
