//! Route handlers, one file per concern.

pub mod discovery;
pub mod health;
pub mod token;
