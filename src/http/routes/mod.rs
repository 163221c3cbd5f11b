//! Route handlers, one file per concern.

pub mod discovery;
pub mod health;
pub mod introspect;
pub mod revoke;
pub mod sandbox;
pub mod stream;
pub mod token;
pub mod verify;
