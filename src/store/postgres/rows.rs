//! Records as columns: an MO's fields as bind arrays for one-statement batches (`unnest`), and
//! a login's state as the columns the schema constrains.

use tokio_postgres::Row;

use super::PostgresError;
use crate::core::clock::UnixSecs;
use crate::core::login::{LoginRecord, LoginState, RejectReason};
use crate::core::mo::Concat;
use crate::core::mo::MoMessage;
use crate::core::msisdn::Msisdn;

/// The MO columns, in the order [`mo_from_row`] reads them from `offset` on.
pub(super) const MO_COLUMNS: &str = "smsc, source_addr, source_ton, destination_addr, esm_class, \
     data_coding, user_data, sar_reference, sar_total, sar_seq, received_at";

/// Seconds as PostgreSQL's bigint; times beyond 2^63 s are not times anyone will see.
pub(super) fn secs(t: UnixSecs) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn unsecs(t: i64) -> UnixSecs {
    u64::try_from(t).unwrap_or(0)
}

/// A batch of MOs as one array per column, to bind as `unnest($1::text[], …)`.
#[derive(Default)]
pub(super) struct MoArrays {
    pub smsc: Vec<String>,
    pub source_addr: Vec<String>,
    pub source_ton: Vec<i16>,
    pub destination_addr: Vec<String>,
    pub esm_class: Vec<i16>,
    pub data_coding: Vec<i16>,
    pub user_data: Vec<Vec<u8>>,
    pub sar_reference: Vec<Option<i32>>,
    pub sar_total: Vec<Option<i16>>,
    pub sar_seq: Vec<Option<i16>>,
    pub received_at: Vec<i64>,
}

impl MoArrays {
    pub fn push(&mut self, mo: &MoMessage) {
        self.smsc.push(mo.smsc.clone());
        self.source_addr.push(mo.source_addr.clone());
        self.source_ton.push(i16::from(mo.source_ton));
        self.destination_addr.push(mo.destination_addr.clone());
        self.esm_class.push(i16::from(mo.esm_class));
        self.data_coding.push(i16::from(mo.data_coding));
        self.user_data.push(mo.user_data.clone());
        self.sar_reference
            .push(mo.sar.map(|s| i32::from(s.reference)));
        self.sar_total.push(mo.sar.map(|s| i16::from(s.total)));
        self.sar_seq.push(mo.sar.map(|s| i16::from(s.seq)));
        self.received_at.push(secs(mo.received_at));
    }

    /// The eleven arrays as bind parameters, in [`MO_COLUMNS`] order.
    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 11] {
        [
            &self.smsc,
            &self.source_addr,
            &self.source_ton,
            &self.destination_addr,
            &self.esm_class,
            &self.data_coding,
            &self.user_data,
            &self.sar_reference,
            &self.sar_total,
            &self.sar_seq,
            &self.received_at,
        ]
    }
}

/// Small integers come back as they went in; a value out of range means the row was written
/// by something other than moauth.
pub(super) fn byte(table: &'static str, value: i16) -> Result<u8, PostgresError> {
    u8::try_from(value).map_err(|_| PostgresError::Corrupt {
        table,
        what: format!("{value} is not a byte"),
    })
}

pub(super) fn mo_from_row(
    table: &'static str,
    row: &Row,
    offset: usize,
) -> Result<MoMessage, PostgresError> {
    let sar_reference: Option<i32> = row.try_get(offset + 7)?;
    let sar_total: Option<i16> = row.try_get(offset + 8)?;
    let sar_seq: Option<i16> = row.try_get(offset + 9)?;
    let sar = match (sar_reference, sar_total, sar_seq) {
        (Some(reference), Some(total), Some(seq)) => Some(Concat {
            reference: u16::try_from(reference).map_err(|_| PostgresError::Corrupt {
                table,
                what: format!("sar reference {reference}"),
            })?,
            total: byte(table, total)?,
            seq: byte(table, seq)?,
        }),
        _ => None,
    };
    Ok(MoMessage {
        smsc: row.try_get(offset)?,
        source_addr: row.try_get(offset + 1)?,
        source_ton: byte(table, row.try_get(offset + 2)?)?,
        destination_addr: row.try_get(offset + 3)?,
        esm_class: byte(table, row.try_get(offset + 4)?)?,
        data_coding: byte(table, row.try_get(offset + 5)?)?,
        user_data: row.try_get(offset + 6)?,
        sar,
        received_at: unsecs(row.try_get(offset + 10)?),
    })
}

/// The login columns, in the order [`login_from_row`] reads them.
pub(super) const LOGIN_COLUMNS: &str =
    "state, session, account_id, created, reason, msisdn, issued_at, decided_at, keep_until";

/// A login record's columns, in [`LOGIN_COLUMNS`] order.
pub(super) struct LoginColumns<'a> {
    pub state: &'static str,
    pub session: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub created: Option<bool>,
    pub reason: Option<&'static str>,
    pub msisdn: Option<&'a str>,
    pub issued_at: i64,
    pub decided_at: i64,
    pub keep_until: i64,
}

impl LoginColumns<'_> {
    /// The nine columns as bind parameters, in [`LOGIN_COLUMNS`] order.
    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 9] {
        [
            &self.state,
            &self.session,
            &self.account_id,
            &self.created,
            &self.reason,
            &self.msisdn,
            &self.issued_at,
            &self.decided_at,
            &self.keep_until,
        ]
    }
}

pub(super) fn login_columns(record: &LoginRecord) -> LoginColumns<'_> {
    let bare = |state| LoginColumns {
        state,
        session: None,
        account_id: None,
        created: None,
        reason: None,
        msisdn: record.msisdn.as_ref().map(|m| m.as_str()),
        issued_at: secs(record.issued_at),
        decided_at: secs(record.decided_at),
        keep_until: secs(record.keep_until),
    };
    match &record.state {
        LoginState::Complete {
            session,
            account_id,
            created,
        } => LoginColumns {
            session: Some(session),
            account_id: Some(account_id),
            created: Some(*created),
            ..bare("complete")
        },
        LoginState::Consumed => bare("consumed"),
        LoginState::Expired => bare("expired"),
        LoginState::Waiting => bare("waiting"),
        LoginState::Rejected { reason } => LoginColumns {
            reason: Some(reason.as_str()),
            ..bare("rejected")
        },
    }
}

pub(super) fn login_from_row(row: &Row) -> Result<LoginRecord, PostgresError> {
    let corrupt = |what: String| PostgresError::Corrupt {
        table: "logins",
        what,
    };
    let state: String = row.try_get(0)?;
    let state = match state.as_str() {
        "complete" => LoginState::Complete {
            session: row
                .try_get::<_, Option<String>>(1)?
                .ok_or_else(|| corrupt("complete without a session".into()))?,
            account_id: row.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
            created: row.try_get::<_, Option<bool>>(3)?.unwrap_or(false),
        },
        "consumed" => LoginState::Consumed,
        "expired" => LoginState::Expired,
        "waiting" => LoginState::Waiting,
        "rejected" => {
            let reason: Option<String> = row.try_get(4)?;
            let reason = reason.unwrap_or_default();
            LoginState::Rejected {
                reason: RejectReason::from_name(&reason)
                    .ok_or_else(|| corrupt(format!("unknown reason {reason:?}")))?,
            }
        }
        other => return Err(corrupt(format!("unknown state {other:?}"))),
    };
    let msisdn: Option<String> = row.try_get(5)?;
    let msisdn = msisdn
        .map(|m| Msisdn::parse(&m).map_err(|e| corrupt(format!("msisdn: {e}"))))
        .transpose()?;
    Ok(LoginRecord {
        state,
        msisdn,
        issued_at: unsecs(row.try_get(6)?),
        decided_at: unsecs(row.try_get(7)?),
        keep_until: unsecs(row.try_get(8)?),
    })
}
