//! The error every storage port returns (the core's `ClientStore` and
//! `UserStore`, the key ring's `KeyStore`, the sandbox's and the audit
//! trail's stores). It sits in a module of its own, importing nothing of
//! the crate, because `keys` is a leaf that `oauth` depends on: defined in
//! either of them it would tie the two together both ways.

/// A storage failure, typed as far as the core cares.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A row with this key already exists.
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or failed.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
}
