//! ficha's one integration test binary: a real server per test, driven
//! over HTTP and through the real CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod cli;
mod dialects;
mod interop;
mod keys;
mod production;
mod token;
