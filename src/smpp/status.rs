//! SMPP command_status values as the specifications name them (SMPP 3.4 §5.1.3, SMPP 5.0
//! §4.7.6), for logs, `/readyz`, `moauth status` and metric labels.
//!
//! One table for the whole crate: an operator greps a carrier's manual for `ESME_RINVPASWD`, not
//! for a Rust enum's `EsmeRinvpaswd`, so every place that shows a status goes through
//! [`SmppStatus`].

use std::borrow::Cow;
use std::fmt;

use rusmpp::CommandStatus;

/// The name of command_status 0, the one every accepted reply is logged with.
pub const OK_NAME: &str = "ESME_ROK";

/// (value, name, meaning) as the SMPP 3.4 and 5.0 specifications write them.
const TABLE: &[(u32, &str, &str)] = &[
    (0x00, OK_NAME, "no error"),
    (0x01, "ESME_RINVMSGLEN", "message length is invalid"),
    (0x02, "ESME_RINVCMDLEN", "command length is invalid"),
    (0x03, "ESME_RINVCMDID", "invalid command id"),
    (
        0x04,
        "ESME_RINVBNDSTS",
        "incorrect bind status for given command",
    ),
    (0x05, "ESME_RALYBND", "ESME already in bound state"),
    (0x06, "ESME_RINVPRTFLG", "invalid priority flag"),
    (
        0x07,
        "ESME_RINVREGDLVFLG",
        "invalid registered delivery flag",
    ),
    (0x08, "ESME_RSYSERR", "system error"),
    (0x0A, "ESME_RINVSRCADR", "invalid source address"),
    (0x0B, "ESME_RINVDSTADR", "invalid destination address"),
    (0x0C, "ESME_RINVMSGID", "message id is invalid"),
    (0x0D, "ESME_RBINDFAIL", "bind failed"),
    (0x0E, "ESME_RINVPASWD", "invalid password"),
    (0x0F, "ESME_RINVSYSID", "invalid system id"),
    (0x11, "ESME_RCANCELFAIL", "cancel_sm failed"),
    (0x13, "ESME_RREPLACEFAIL", "replace_sm failed"),
    (0x14, "ESME_RMSGQFUL", "message queue full"),
    (0x15, "ESME_RINVSERTYP", "invalid service type"),
    (0x33, "ESME_RINVNUMDESTS", "invalid number of destinations"),
    (0x34, "ESME_RINVDLNAME", "invalid distribution list name"),
    (0x40, "ESME_RINVDESTFLAG", "destination flag is invalid"),
    (
        0x42,
        "ESME_RINVSUBREP",
        "invalid submit with replace request",
    ),
    (0x43, "ESME_RINVESMCLASS", "invalid esm_class field data"),
    (0x44, "ESME_RCNTSUBDL", "cannot submit to distribution list"),
    (0x45, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"),
    (0x48, "ESME_RINVSRCTON", "invalid source address TON"),
    (0x49, "ESME_RINVSRCNPI", "invalid source address NPI"),
    (0x50, "ESME_RINVDSTTON", "invalid destination address TON"),
    (0x51, "ESME_RINVDSTNPI", "invalid destination address NPI"),
    (0x53, "ESME_RINVSYSTYP", "invalid system_type field"),
    (0x54, "ESME_RINVREPFLAG", "invalid replace_if_present flag"),
    (0x55, "ESME_RINVNUMMSGS", "invalid number of messages"),
    (
        0x58,
        "ESME_RTHROTTLED",
        "throttling error: message rate exceeded",
    ),
    (0x61, "ESME_RINVSCHED", "invalid scheduled delivery time"),
    (0x62, "ESME_RINVEXPIRY", "invalid validity period"),
    (
        0x63,
        "ESME_RINVDFTMSGID",
        "predefined message invalid or not found",
    ),
    (
        0x64,
        "ESME_RX_T_APPN",
        "ESME receiver temporary application error",
    ),
    (
        0x65,
        "ESME_RX_P_APPN",
        "ESME receiver permanent application error",
    ),
    (0x66, "ESME_RX_R_APPN", "ESME receiver reject message error"),
    (0x67, "ESME_RQUERYFAIL", "query_sm failed"),
    (
        0xC0,
        "ESME_RINVTLVSTREAM",
        "error in the optional part of the PDU body",
    ),
    (0xC1, "ESME_RTLVNOTALLWD", "optional parameter not allowed"),
    (0xC2, "ESME_RINVTLVLEN", "invalid parameter length"),
    (
        0xC3,
        "ESME_RMISSINGTLV",
        "expected optional parameter missing",
    ),
    (0xC4, "ESME_RINVTLVVAL", "invalid optional parameter value"),
    (0xFE, "ESME_RDELIVERYFAILURE", "delivery failure"),
    (0xFF, "ESME_RUNKNOWNERR", "unknown error"),
    (
        0x100,
        "ESME_RSERTYPUNAUTH",
        "not authorised to use this service_type",
    ),
    (
        0x101,
        "ESME_RPROHIBITED",
        "prohibited from using this operation",
    ),
    (0x102, "ESME_RSERTYPUNAVAIL", "service_type is unavailable"),
    (0x103, "ESME_RSERTYPDENIED", "service_type is denied"),
    (0x104, "ESME_RINVDCS", "invalid data coding scheme"),
    (
        0x105,
        "ESME_RINVSRCADDRSUBUNIT",
        "source address subunit is invalid",
    ),
    (
        0x106,
        "ESME_RINVDSTADDRSUBUNIT",
        "destination address subunit is invalid",
    ),
];

/// A command_status, shown as `ESME_RINVPASWD (0x0000000E, invalid password)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SmppStatus(pub u32);

impl SmppStatus {
    fn entry(self) -> Option<(&'static str, &'static str)> {
        TABLE
            .iter()
            .find(|(value, _, _)| *value == self.0)
            .map(|(_, name, meaning)| (*name, *meaning))
    }

    /// The specification's name (`ESME_RINVPASWD`); a value it does not name as `0x0000040A`.
    /// Bounded, so it serves as a metric label.
    pub fn name(self) -> Cow<'static, str> {
        match self.entry() {
            Some((name, _)) => Cow::Borrowed(name),
            None => Cow::Owned(format!("0x{:08X}", self.0)),
        }
    }

    /// What the value means, in the specification's words.
    pub fn meaning(self) -> &'static str {
        match self.entry() {
            Some((_, meaning)) => meaning,
            // SMPP 3.4 and 5.0 leave 0x400-0x4FF to SMSC vendors.
            None if (0x400..=0x4FF).contains(&self.0) => "SMSC vendor-specific error",
            None => "reserved value",
        }
    }

    /// Statuses that say the credentials are wrong: trying again soon cannot help, and a
    /// tight loop of wrong passwords can get the account locked at the carrier.
    /// ESME_RBINDFAIL (0x0D) is not among them: SMSCs also send it for passing conditions
    /// (too many binds, the SMSC starting up), where the usual backoff is right.
    pub fn is_authentication(self) -> bool {
        matches!(self.0, 0x0E | 0x0F | 0x53)
    }
}

impl From<CommandStatus> for SmppStatus {
    fn from(status: CommandStatus) -> Self {
        SmppStatus(u32::from(status))
    }
}

impl fmt::Display for SmppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry() {
            Some((name, meaning)) => write!(f, "{name} (0x{:08X}, {meaning})", self.0),
            None => write!(f, "0x{:08X} ({})", self.0, self.meaning()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_the_specification_names_them() {
        let password = SmppStatus::from(CommandStatus::EsmeRinvpaswd);
        assert_eq!(
            password.to_string(),
            "ESME_RINVPASWD (0x0000000E, invalid password)"
        );
        assert_eq!(password.name(), "ESME_RINVPASWD");
        assert!(password.is_authentication());
        assert_eq!(
            SmppStatus::from(CommandStatus::EsmeRthrottled).name(),
            "ESME_RTHROTTLED"
        );
        assert!(!SmppStatus::from(CommandStatus::EsmeRthrottled).is_authentication());
        assert_eq!(
            SmppStatus(0x40A).to_string(),
            "0x0000040A (SMSC vendor-specific error)"
        );
        assert_eq!(SmppStatus(0x40A).name(), "0x0000040A");
    }

    #[test]
    fn the_table_agrees_with_rusmpp_on_every_value() {
        // rusmpp's enum and this table come from the same specification: a value rusmpp
        // names must be one the table names too (so no log shows a bare number for it).
        for (value, name, _) in TABLE {
            let status = CommandStatus::from(*value);
            assert_eq!(u32::from(status), *value, "{name}");
            let rust = format!("{status:?}").to_ascii_uppercase().replace('_', "");
            assert_eq!(rust, name.replace('_', ""), "{value:#x}");
        }
        let mut values: Vec<u32> = TABLE.iter().map(|(v, _, _)| *v).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), TABLE.len(), "a value twice");
    }
}
