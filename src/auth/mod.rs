//! The two auth cores behind [`crate::core::auth::AuthCore`]: the embedded one (accounts in the
//! store, Argon2id passwords) and the remote one (the app's own account system over signed
//! HTTP, behind a circuit breaker).

mod backoff;
mod breaker;
pub mod config;
mod embedded;
pub mod hasher;
mod register;
mod remote;

pub use embedded::EmbeddedAuth;
pub use hasher::Hasher;
pub use register::Registrar;
pub use remote::{PLAIN_HTTP_REFUSED, RemoteAuth, RemoteError};
