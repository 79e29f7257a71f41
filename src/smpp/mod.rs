//! The SMPP side of moauth: talking to carrier SMSCs as an ESME.
//!
//! Split by how much each part knows: `frame` turns bytes into rusmpp commands (or refusals
//! that keep the session alive), `udh` and `text` turn a short_message into text and back, all
//! sans-IO so they are tested byte for byte without a socket.

pub mod address;
pub mod config;
pub mod frame;
pub mod link;
pub mod receipt;
pub mod session;
pub mod status;
pub mod text;
pub mod tls;
pub mod udh;
