//! ficha's one integration test binary: a real server per test, driven
//! over HTTP and through the real CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod attack;
mod audit_trail;
mod auth_verify;
mod binding;
mod cli;
mod cluster;
mod completions;
mod config_check;
mod config_file;
mod console;
mod crash;
mod dialects;
mod edge;
mod fegora;
mod grants;
mod hardening;
mod interop;
mod introspect;
mod keys;
mod lifecycle;
mod logging;
mod migrations;
mod nginx;
mod no_secrets;
mod openapi;
mod outage;
mod pg_tls;
mod production;
mod props;
mod revoke;
mod sandbox;
mod store_contract;
mod tls;
mod token;
