//! `[[smsc]]`: one SMPP connection per entry, and the checks SMPP itself imposes (field
//! lengths, interface version, TLS material that loads).
//!
//! `problems()` returns what types alone cannot say, as (key path relative to the section,
//! message) pairs; `ops::config` turns each path into the file's line and column.

use std::path::PathBuf;

use serde::Deserialize;

use crate::core::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmscConfig {
    pub name: String,
    /// host:port; a host name is resolved at every connect.
    pub address: super::address::SmscAddress,
    pub system_id: String,
    pub password: Secret,
    #[serde(default)]
    pub system_type: String,
    /// address_range sent in the bind, if the carrier routes by it.
    #[serde(default)]
    pub address_range: String,
    /// "transceiver", or "pair" for a receiver and a transmitter connection.
    #[serde(default)]
    pub bind: BindMode,
    /// SMPP over TLS.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CAs that sign the SMSC's certificate; the Mozilla roots when absent.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Name to verify in the SMSC's certificate; the host of `address` (a name or an IP
    /// address) when absent.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// The number the app's SMS composer sends to; also the source of replies.
    pub short_code: String,
    #[serde(default = "default_interface_version")]
    pub interface_version: String,
    #[serde(default = "default_enquire_link")]
    pub enquire_link_secs: u64,
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// A submit_sm unanswered within `response_timeout_secs` may still have been accepted:
    /// its late answer is matched until the next copy would go, this long after the copy
    /// went unanswered.
    #[serde(default = "default_resend_after")]
    pub resend_after_secs: u64,
    /// Copies sent after the first of a message whose submit_sm went unanswered; then it is
    /// given up as of unknown fate.
    #[serde(default = "default_max_resends")]
    pub max_resends: u32,
    /// Outstanding submit_sm allowed before waiting for responses.
    #[serde(default = "default_window")]
    pub window: usize,
    /// submit_sm per second allowed on this connection by the carrier; 0 for no cap.
    #[serde(default = "default_max_tps")]
    pub max_tps: u32,
    /// Ask for delivery receipts (registered_delivery) on every submit_sm.
    #[serde(default = "default_true")]
    pub delivery_receipts: bool,
    /// What this SMSC means by data_coding 0, "the SMSC default alphabet".
    #[serde(default)]
    pub default_alphabet: DefaultAlphabet,
}

/// The alphabet an SMSC uses for data_coding 0 (Kannel's `alt-charset`): SMPP leaves it to the
/// SMSC, and many send ASCII or Latin-1 there rather than GSM 03.38.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAlphabet {
    #[default]
    Gsm,
    Latin1,
    Ascii,
}

impl DefaultAlphabet {
    /// The data_coding that names this SMSC's alphabet explicitly, for user data it sent
    /// under `data_coding`. Only 0 depends on the SMSC; the GSM groups of TS 23.038 (0xC0 and
    /// up, 0xF0..0xF3) say GSM by themselves. Translated where the MO comes in, so nothing
    /// downstream needs to know which SMSC it came from to read it.
    pub fn explicit(self, data_coding: u8) -> u8 {
        match (data_coding, self) {
            (0x00, DefaultAlphabet::Latin1) => 0x03,
            (0x00, DefaultAlphabet::Ascii) => 0x01,
            _ => data_coding,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    #[default]
    Transceiver,
    Pair,
}

fn default_interface_version() -> String {
    "3.4".into()
}
fn default_enquire_link() -> u64 {
    30
}
fn default_response_timeout() -> u64 {
    10
}
fn default_resend_after() -> u64 {
    60
}
fn default_max_resends() -> u32 {
    1
}
fn default_window() -> usize {
    10
}
fn default_max_tps() -> u32 {
    50
}

fn default_true() -> bool {
    true
}

impl SmscConfig {
    /// What types alone cannot say; `earlier` are the entries above this one in the file.
    pub fn problems<'a>(
        &self,
        mut earlier: impl Iterator<Item = &'a SmscConfig>,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        // Two links of one name would both send every reply (each claims the name's outbox).
        if earlier.any(|e| e.name == self.name) {
            problems.push((
                "name".into(),
                format!("{:?}: another [[smsc]] has this name", self.name),
            ));
        }
        let mut at = |key: &str, message: &str| problems.push((key.into(), message.into()));
        if !matches!(self.interface_version.as_str(), "3.4" | "5.0") {
            at("interface_version", "must be \"3.4\" or \"5.0\"");
        }
        if self.system_id.len() > 15 {
            at("system_id", "SMPP allows at most 15 characters");
        }
        if self.password.expose().len() > 8 {
            at("password", "SMPP 3.4 allows at most 8 characters");
        }
        if self.system_type.len() > 12 {
            at("system_type", "SMPP allows at most 12 characters");
        }
        if self.tls
            && let Err(e) = super::tls::TlsClient::new(
                self.tls_ca_file.as_deref(),
                self.tls_server_name.as_deref(),
                self.address.host(),
            )
        {
            let key = match e {
                super::tls::TlsError::ServerName(_) => "tls_server_name",
                _ => "tls_ca_file",
            };
            at(key, &e.to_string());
        }
        if self.address_range.len() > 40 || !self.address_range.is_ascii() {
            at("address_range", "at most 40 ASCII characters");
        }
        if self.short_code.is_empty() || self.short_code.len() > 20 {
            at("short_code", "must be 1 to 20 characters");
        }
        if self.window == 0 {
            at("window", "must be at least 1");
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_alphabet_names_only_data_coding_0() {
        assert_eq!(DefaultAlphabet::Gsm.explicit(0), 0);
        assert_eq!(DefaultAlphabet::Latin1.explicit(0), 3);
        assert_eq!(DefaultAlphabet::Ascii.explicit(0), 1);
        for explicit in [1, 3, 8, 0xF0, 0xC0] {
            assert_eq!(DefaultAlphabet::Latin1.explicit(explicit), explicit);
            assert_eq!(DefaultAlphabet::Ascii.explicit(explicit), explicit);
        }
    }
}
