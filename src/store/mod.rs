//! The store backends, each behind the traits of [`crate::core::store`], and what runs in
//! front of any of them.
//!
//! - [`sled`]: the embedded default, one process and one directory.
//! - [`postgres`]: several nodes on one database.
//! - [`export`]: the file `moauth store export` writes and `import` reads, for either backend.
//! - [`ingest`]: the group commit between the SMPP links and whichever backend is in use.

pub mod config;
pub mod export;
pub mod ingest;
pub mod postgres;
pub mod sled;
