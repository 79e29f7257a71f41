//! The store backends, each behind the traits of [`crate::core::store`], and what runs in
//! front of any of them.
//!
//! - [`sled`]: the embedded default, one process and one directory.
//! - [`postgres`]: several nodes on one database.
//! - [`ingest`]: the group commit between the SMPP links and whichever backend is in use.

pub mod ingest;
pub mod postgres;
pub mod sled;
