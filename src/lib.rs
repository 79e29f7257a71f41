//! moauth: register or log in to an app by sending one SMS (method of patent CN103152331A).
//!
//! The SMS path (phone → SMSC → SMPP `deliver_sm`) proves the phone number and carries the token;
//! the HTTP path (app backend → moauth) redeems the verifier for the session. Each module owns one
//! concept; protocol logic is sans-IO, tokio tasks only move bytes.
//!
//! The shape is a star: [`core`] (domain types, pure decisions, the store and auth-core
//! interfaces) imports nothing else from the crate; the adapters around it (`store`, `smpp`,
//! `sim`, `http`, `webhooks`, `auth`) and the pipeline (`login`) depend on it; [`daemon`] is
//! the one place that wires them, and `cli` only parses arguments and hands over.

pub mod auth;
pub mod cli;
pub mod core;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod login;
pub mod ops;
pub mod signing;
pub mod sim;
pub mod smpp;
pub mod store;
pub mod webhooks;

/// Makes rustls with ring the TLS provider of every client in the process, before any
/// `reqwest::Client` is built. reqwest is compiled without a provider of its own (its default
/// would pull in aws-lc-rs next to the ring that SMPP over TLS already uses), and then
/// panics building a client unless one is installed. `main`, [`daemon::Daemon::start`] and
/// the test harnesses call this first; calling it again does nothing.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is all we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
