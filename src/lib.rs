//! moauth: register or log in to an app by sending one SMS (method of patent CN103152331A).
//!
//! The SMS path (phone → SMSC → SMPP `deliver_sm`) proves the phone number and carries the token;
//! the HTTP path (app backend → moauth) redeems the verifier for the session. Each module owns one
//! concept; protocol logic is sans-IO, tokio tasks only move bytes.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod login;
pub mod msisdn;
pub mod ops;
pub mod signing;
pub mod sim;
pub mod smpp;
pub mod store;
pub mod token;
pub mod webhooks;
