//! A mobile-originated SMS as the SMSC handed it over, before anything was read from it.
//!
//! The raw user data is kept (not decoded text) so that nothing the SMSC sent is lost to a
//! decoding decision made before the MO was safe. [`MoMessage::digest`] is what every store
//! backend deduplicates redeliveries by, so two nodes agree on what a repeat is.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::clock::UnixSecs;
use crate::core::outbound::SmsRoute;

/// A mobile-originated SMS as received, before interpretation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoMessage {
    /// Name of the SMSC connection it came in on; replies go out the same way.
    pub smsc: String,
    pub source_addr: String,
    pub source_ton: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub data_coding: u8,
    /// short_message, or the message_payload TLV when short_message was empty.
    pub user_data: Vec<u8>,
    /// Part numbering from sar_* TLVs (a UDH, if any, is still inside `user_data`).
    #[serde(default)]
    pub sar: Option<Concat>,
    pub received_at: UnixSecs,
}

impl MoMessage {
    /// Where a reply to this MO goes: back through its SMSC, from the short code it was sent to.
    pub fn reply_route(&self) -> SmsRoute {
        SmsRoute {
            smsc: self.smsc.clone(),
            from: self.destination_addr.clone(),
        }
    }

    /// Identifies a delivery of this exact PDU content, whenever it arrives.
    pub fn digest(&self) -> [u8; 16] {
        let mut h = Sha256::new();
        for field in [
            self.smsc.as_bytes(),
            self.source_addr.as_bytes(),
            self.destination_addr.as_bytes(),
        ] {
            h.update((field.len() as u32).to_be_bytes());
            h.update(field);
        }
        h.update([self.source_ton, self.esm_class, self.data_coding]);
        if let Some(sar) = self.sar {
            h.update(sar.reference.to_be_bytes());
            h.update([sar.total, sar.seq]);
        }
        h.update(&self.user_data);
        let full = h.finalize();
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&full[..16]);
        digest
    }
}

/// Where a part sits in a concatenated message; reassembly keys on the sender and `reference`.
/// Also carries the same facts when an SMSC sends them as sar_* TLVs instead of a UDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Concat {
    /// Widened to 16 bits so 8-bit and 16-bit references share one type; the two IEs are
    /// mutually exclusive within one message, so the widths never need telling apart.
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// An MO the pipeline could not read (a malformed header, an unanswerable sender, undecodable
/// text), kept for an operator to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedMo {
    pub mo: MoMessage,
    pub reason: String,
}
