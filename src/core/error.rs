//! The store's errors as every consumer sees them, whichever backend is behind the traits.
//!
//! A consumer needs to know one thing: whether trying again can help. Backend detail (a sled
//! I/O error, a PostgreSQL connection reset) travels as text for the log.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The backend failed (I/O, connection, a bug it reported). Nothing of the failed call is
    /// acknowledged; trying again later may succeed.
    #[error("store: {0}")]
    Backend(String),
    #[error("store: the account to log in to was erased while the login was made")]
    AccountVanished,
    #[error("store: corrupt record in {tree}: {message}")]
    Corrupt { tree: &'static str, message: String },
}
