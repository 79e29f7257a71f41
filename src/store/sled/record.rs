//! How sled records sit on disk: one format byte, then the record in postcard.
//!
//! Until this format, records were JSON: a completed login took about 200 bytes, most of it
//! field names and decimal digits, and every byte is paid again in sled's log, its page cache
//! and each rewrite. postcard (a stable, documented serde wire format: varints, no field
//! names) takes such a login to under 90.
//!
//! The first byte names the format of the rest, so that a later release can read what this
//! one wrote and change a layout by adding a version, never by reinterpreting old bytes:
//! - [`V1`]: postcard of the v1 layout. For most records the layout is the Rust type's own
//!   fields in declaration order (`golden_bytes_pin_every_v1_layout` fails on any change);
//!   logins have their own layout below, since their state is an internally tagged enum,
//!   which postcard cannot read, and the sweep reads their expiry alone.
//! - `{`: JSON, as every release before this one wrote its records. Read, never written: a
//!   store from before keeps working, and a record becomes v1 when it is next written.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::core::auth::{Account, AuthAnswer};
use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
use crate::core::login::{LoginRecord, LoginState, MintedLogin, RejectReason};
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};

/// The format byte of postcard records, layout version 1.
pub(super) const V1: u8 = 1;
/// The first byte of every record written before versioned records: a JSON object.
const JSON: u8 = b'{';

/// A value the sled store keeps: how it becomes bytes, and back.
pub(super) trait Record: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(tree: &'static str, bytes: &[u8]) -> Result<Self, StoreError>;
}

fn corrupt(tree: &'static str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree,
        message: message.to_string(),
    }
}

fn postcard_v1<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, vec![V1]).expect("store records serialise to postcard")
}

/// The postcard value that fills `bytes` exactly (trailing bytes mean a misread layout).
fn from_postcard<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(corrupt(
            tree,
            format!("{} bytes past the record", rest.len()),
        )),
        Err(e) => Err(corrupt(tree, e)),
    }
}

fn unknown_format(tree: &'static str, bytes: &[u8]) -> StoreError {
    match bytes.first() {
        Some(b) => corrupt(
            tree,
            format!("record format {b:#04x} is unknown (from a later release?)"),
        ),
        None => corrupt(tree, "empty record"),
    }
}

/// Records whose v1 layout is their own fields.
macro_rules! plain_records {
    ($($t:ty),* $(,)?) => {$(
        impl Record for $t {
            fn to_bytes(&self) -> Vec<u8> {
                postcard_v1(self)
            }

            fn from_bytes(tree: &'static str, bytes: &[u8]) -> Result<Self, StoreError> {
                match bytes.first() {
                    Some(&V1) => from_postcard(tree, &bytes[1..]),
                    Some(&JSON) => serde_json::from_slice(bytes).map_err(|e| corrupt(tree, e)),
                    _ => Err(unknown_format(tree, bytes)),
                }
            }
        }
    )*};
}

plain_records!(
    AuthAnswer,
    MintedLogin,
    MoMessage,
    Outbound,
    QueuedEvent,
    RejectedMo,
    SentRecord,
    PendingRecord,
);

/// An account whose password is pending (`password_pending`, keyed by account id): what the
/// registrar needs to make the password and text it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PendingRecord {
    pub msisdn: Msisdn,
    pub smsc: String,
    pub from: String,
    pub since: UnixSecs,
}

/// An account as v1 held it: the hash always there.
#[derive(Serialize, Deserialize)]
struct AccountV1 {
    id: u64,
    password_hash: String,
    created_at: UnixSecs,
}

impl Record for Account {
    /// An account with a password is written as v1, so that an earlier release still reads
    /// it; one without (its password pending) as v2: `Account`'s own fields, the hash an
    /// option.
    fn to_bytes(&self) -> Vec<u8> {
        match &self.password_hash {
            Some(hash) => postcard_v1(&AccountV1 {
                id: self.id,
                password_hash: hash.clone(),
                created_at: self.created_at,
            }),
            None => {
                postcard::to_extend(self, vec![V2]).expect("store records serialise to postcard")
            }
        }
    }

    fn from_bytes(tree: &'static str, bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.first() {
            Some(&V2) => from_postcard(tree, &bytes[1..]),
            Some(&V1) => {
                let v1: AccountV1 = from_postcard(tree, &bytes[1..])?;
                Ok(Account {
                    id: v1.id,
                    password_hash: Some(v1.password_hash),
                    created_at: v1.created_at,
                })
            }
            Some(&JSON) => serde_json::from_slice(bytes).map_err(|e| corrupt(tree, e)),
            _ => Err(unknown_format(tree, bytes)),
        }
    }
}

/// The format byte of a session record with its number and issue time (layout version 2).
pub(super) const V2: u8 = 2;

/// An embedded-core session, stored by the hash of its token. Version 1 held the account and
/// the expiry only; version 2 appends the number (introspection answers with it) and when the
/// session was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SessionRecord {
    pub account_id: u64,
    pub expires_at: UnixSecs,
    pub issued_at: Option<UnixSecs>,
    pub msisdn: Option<Msisdn>,
}

#[derive(Serialize, Deserialize)]
struct SessionV1 {
    account_id: u64,
    expires_at: UnixSecs,
}

#[derive(Serialize, Deserialize)]
struct SessionV2 {
    account_id: u64,
    expires_at: UnixSecs,
    issued_at: UnixSecs,
    msisdn: Msisdn,
}

impl Record for SessionRecord {
    /// Written as v2; a record always has both fields once this release made it.
    fn to_bytes(&self) -> Vec<u8> {
        match (self.issued_at, &self.msisdn) {
            (Some(issued_at), Some(msisdn)) => postcard::to_extend(
                &SessionV2 {
                    account_id: self.account_id,
                    expires_at: self.expires_at,
                    issued_at,
                    msisdn: msisdn.clone(),
                },
                vec![V2],
            )
            .expect("store records serialise to postcard"),
            _ => postcard_v1(&SessionV1 {
                account_id: self.account_id,
                expires_at: self.expires_at,
            }),
        }
    }

    fn from_bytes(tree: &'static str, bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.first() {
            Some(&V2) => {
                let v2: SessionV2 = from_postcard(tree, &bytes[1..])?;
                Ok(SessionRecord {
                    account_id: v2.account_id,
                    expires_at: v2.expires_at,
                    issued_at: Some(v2.issued_at),
                    msisdn: Some(v2.msisdn),
                })
            }
            Some(&V1) | Some(&JSON) => {
                let v1: SessionV1 = if bytes[0] == V1 {
                    from_postcard(tree, &bytes[1..])?
                } else {
                    serde_json::from_slice(bytes).map_err(|e| corrupt(tree, e))?
                };
                Ok(SessionRecord {
                    account_id: v1.account_id,
                    expires_at: v1.expires_at,
                    issued_at: None,
                    msisdn: None,
                })
            }
            _ => Err(unknown_format(tree, bytes)),
        }
    }
}

/// A login's v1 layout. `keep_until` comes first so that the sweep reads it without the
/// rest; variants and fields may only be appended, in a new version.
#[derive(Serialize)]
struct LoginOut<'a> {
    keep_until: UnixSecs,
    issued_at: UnixSecs,
    decided_at: UnixSecs,
    msisdn: Option<&'a Msisdn>,
    state: StateOut<'a>,
}

#[derive(Serialize)]
enum StateOut<'a> {
    Complete {
        session: &'a str,
        account_id: &'a str,
        created: bool,
    },
    Consumed,
    Expired,
    /// The reason by its API name: the core's enum order is not part of the format.
    Rejected(&'static str),
    Waiting,
}

#[derive(Deserialize)]
struct LoginIn {
    keep_until: UnixSecs,
    issued_at: UnixSecs,
    decided_at: UnixSecs,
    msisdn: Option<Msisdn>,
    state: StateIn,
}

#[derive(Deserialize)]
enum StateIn {
    Complete {
        session: String,
        account_id: String,
        created: bool,
    },
    Consumed,
    Expired,
    Rejected(String),
    Waiting,
}

impl Record for LoginRecord {
    fn to_bytes(&self) -> Vec<u8> {
        let state = match &self.state {
            LoginState::Complete {
                session,
                account_id,
                created,
            } => StateOut::Complete {
                session,
                account_id,
                created: *created,
            },
            LoginState::Consumed => StateOut::Consumed,
            LoginState::Expired => StateOut::Expired,
            LoginState::Rejected { reason } => StateOut::Rejected(reason.as_str()),
            LoginState::Waiting => StateOut::Waiting,
        };
        postcard_v1(&LoginOut {
            keep_until: self.keep_until,
            issued_at: self.issued_at,
            decided_at: self.decided_at,
            msisdn: self.msisdn.as_ref(),
            state,
        })
    }

    fn from_bytes(tree: &'static str, bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.first() {
            Some(&V1) => {
                let login: LoginIn = from_postcard(tree, &bytes[1..])?;
                let state = match login.state {
                    StateIn::Complete {
                        session,
                        account_id,
                        created,
                    } => LoginState::Complete {
                        session,
                        account_id,
                        created,
                    },
                    StateIn::Consumed => LoginState::Consumed,
                    StateIn::Expired => LoginState::Expired,
                    StateIn::Rejected(name) => LoginState::Rejected {
                        reason: RejectReason::from_name(&name).ok_or_else(|| {
                            corrupt(tree, format!("unknown reject reason {name:?}"))
                        })?,
                    },
                    StateIn::Waiting => LoginState::Waiting,
                };
                Ok(LoginRecord {
                    state,
                    msisdn: login.msisdn,
                    issued_at: login.issued_at,
                    decided_at: login.decided_at,
                    keep_until: login.keep_until,
                })
            }
            Some(&JSON) => serde_json::from_slice(bytes).map_err(|e| corrupt(tree, e)),
            _ => Err(unknown_format(tree, bytes)),
        }
    }
}

/// A login record's `keep_until`, without decoding the rest of it: the sweep reads every
/// record, and whole records made a sweep of a million take seconds.
pub(super) fn login_keep_until(tree: &'static str, bytes: &[u8]) -> Result<UnixSecs, StoreError> {
    #[derive(Deserialize)]
    struct Expiry {
        keep_until: UnixSecs,
    }
    match bytes.first() {
        Some(&V1) => postcard::take_from_bytes::<UnixSecs>(&bytes[1..])
            .map(|(keep_until, _)| keep_until)
            .map_err(|e| corrupt(tree, e)),
        Some(&JSON) => serde_json::from_slice::<Expiry>(bytes)
            .map(|e| e.keep_until)
            .map_err(|e| corrupt(tree, e)),
        _ => Err(unknown_format(tree, bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::Credentials;
    use crate::core::mo::Concat;

    fn number() -> Msisdn {
        Msisdn::parse("+8613800138000").unwrap()
    }

    fn logins() -> Vec<LoginRecord> {
        let record = |state| LoginRecord {
            state,
            msisdn: Some(number()),
            issued_at: 1_700_000_000,
            decided_at: 1_700_000_005,
            keep_until: 1_700_004_200,
        };
        let mut all = vec![
            record(LoginState::Complete {
                session: "x".repeat(43),
                account_id: "42".into(),
                created: true,
            }),
            record(LoginState::Consumed),
            record(LoginState::Expired),
            record(LoginState::Waiting),
            LoginRecord {
                msisdn: None,
                ..record(LoginState::Expired)
            },
        ];
        for reason in [
            RejectReason::BadToken,
            RejectReason::Replayed,
            RejectReason::AuthCoreRefused,
            RejectReason::RateLimited,
            RejectReason::BlockedNumber,
            RejectReason::AuthCoreUnavailable,
        ] {
            all.push(record(LoginState::Rejected { reason }));
        }
        all
    }

    fn mo() -> MoMessage {
        MoMessage {
            smsc: "carrier".into(),
            source_addr: "8613800138000".into(),
            source_ton: 1,
            destination_addr: "10690000".into(),
            esm_class: 0x40,
            data_coding: 8,
            user_data: vec![5, 0, 3, 7, 2, 1, 0, 0x4f],
            sar: Some(Concat {
                reference: 700,
                total: 2,
                seq: 1,
            }),
            received_at: 1_700_000_000,
        }
    }

    /// Every record type: v1 round-trips, and the JSON an earlier release wrote still reads.
    fn both_ways<T>(values: &[T])
    where
        T: Record + Serialize + PartialEq + std::fmt::Debug,
    {
        for value in values {
            let bytes = value.to_bytes();
            assert_eq!(bytes[0], V1);
            assert_eq!(&T::from_bytes("t", &bytes).unwrap(), value);
            let json = serde_json::to_vec(value).unwrap();
            assert_eq!(&T::from_bytes("t", &json).unwrap(), value, "legacy JSON");
        }
    }

    #[test]
    fn every_record_round_trips_and_reads_its_json_form() {
        both_ways(&logins());
        both_ways(&[mo()]);
        both_ways(&[RejectedMo {
            mo: mo(),
            reason: "bad UDH".into(),
        }]);
        both_ways(&[Outbound {
            smsc: "carrier".into(),
            from: "10690000".into(),
            to: number(),
            text: "密码 abc".into(),
            created_at: 1_700_000_000,
        }]);
        both_ways(&[QueuedEvent {
            backend: "shop".into(),
            event_id: "e1".into(),
            body: "{\"state\":\"complete\"}".into(),
        }]);
        both_ways(&[
            SentRecord {
                to: number(),
                submitted_at: 1_700_000_000,
                outcome: None,
            },
            SentRecord {
                to: number(),
                submitted_at: 1_700_000_000,
                outcome: Some("DELIVRD".into()),
            },
        ]);
        both_ways(&[MintedLogin {
            backend: "shop".into(),
            issued_at: 1,
            expires_at: 2,
            keep_until: 3,
        }]);
        let session = SessionRecord {
            account_id: 7,
            expires_at: 1_702_592_000,
            issued_at: Some(1_700_000_000),
            msisdn: Some(number()),
        };
        let bytes = session.to_bytes();
        assert_eq!(bytes[0], V2);
        assert_eq!(
            SessionRecord::from_bytes("sessions", &bytes).unwrap(),
            session
        );
        both_ways(&[PendingRecord {
            msisdn: number(),
            smsc: "carrier".into(),
            from: "10690000".into(),
            since: 1_700_000_000,
        }]);
        // Types without PartialEq: compare their JSON.
        for (password_hash, format) in [
            (
                Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
                V1,
            ),
            (None, V2),
        ] {
            let account = Account {
                id: 7,
                password_hash,
                created_at: 1_700_000_000,
            };
            let bytes = account.to_bytes();
            assert_eq!(bytes[0], format);
            let again = Account::from_bytes("accounts", &bytes).unwrap();
            assert_eq!(
                serde_json::to_string(&again).unwrap(),
                serde_json::to_string(&account).unwrap()
            );
            let legacy = serde_json::to_vec(&account).unwrap();
            let again = Account::from_bytes("accounts", &legacy).unwrap();
            assert_eq!(again.password_hash, account.password_hash, "legacy JSON");
        }
        let answer = AuthAnswer {
            account_id: "7".into(),
            created: true,
            session: "s".into(),
            credentials: Some(Credentials {
                login: "+8613800138000".into(),
                password: "p".into(),
            }),
        };
        assert!(AuthAnswer::from_bytes("auth_receipts", &answer.to_bytes()).unwrap() == answer);
        let legacy = serde_json::to_vec(&answer).unwrap();
        assert!(AuthAnswer::from_bytes("auth_receipts", &legacy).unwrap() == answer);
    }

    #[test]
    fn a_completed_login_takes_under_a_hundred_bytes() {
        let login = &logins()[0];
        let (v1, json) = (
            login.to_bytes().len(),
            serde_json::to_vec(login).unwrap().len(),
        );
        assert!(v1 < 100 && v1 * 2 < json, "v1 {v1} bytes, JSON {json}");
    }

    #[test]
    fn the_sweep_reads_keep_until_alone_in_both_formats() {
        for login in logins() {
            let json = serde_json::to_vec(&login).unwrap();
            for bytes in [login.to_bytes(), json] {
                assert_eq!(
                    login_keep_until("logins", &bytes).unwrap(),
                    login.keep_until
                );
            }
        }
    }

    /// The exact v1 bytes of each layout: a change to a stored type's fields fails here, and
    /// must come with a new format version that still reads these bytes.
    #[test]
    fn golden_bytes_pin_every_v1_layout() {
        let login = LoginRecord {
            state: LoginState::Rejected {
                reason: RejectReason::Replayed,
            },
            msisdn: Some(number()),
            issued_at: 1,
            decided_at: 2,
            keep_until: 3,
        };
        let mut expected = vec![V1, 3, 1, 2, 1, 14];
        expected.extend_from_slice(b"+8613800138000");
        expected.extend_from_slice(&[3, 8]);
        expected.extend_from_slice(b"replayed");
        assert_eq!(login.to_bytes(), expected);
        let outbound = Outbound {
            smsc: "s".into(),
            from: "f".into(),
            to: number(),
            text: "t".into(),
            created_at: 4,
        };
        let mut expected = vec![V1, 1, b's', 1, b'f', 14];
        expected.extend_from_slice(b"+8613800138000");
        expected.extend_from_slice(&[1, b't', 4]);
        assert_eq!(outbound.to_bytes(), expected);
        assert_eq!(
            mo().to_bytes()[..12],
            [
                V1, 7, b'c', b'a', b'r', b'r', b'i', b'e', b'r', 13, b'8', b'6'
            ]
        );
        assert_eq!(
            SessionRecord::from_bytes("sessions", &[V1, 1, 2]).unwrap(),
            SessionRecord {
                account_id: 1,
                expires_at: 2,
                issued_at: None,
                msisdn: None
            },
            "a session stored before v2 still reads"
        );
        let mut v2 = vec![V2, 1, 2, 3, 14];
        v2.extend_from_slice(b"+8613800138000");
        assert_eq!(
            SessionRecord {
                account_id: 1,
                expires_at: 2,
                issued_at: Some(3),
                msisdn: Some(number())
            }
            .to_bytes(),
            v2
        );
        assert_eq!(
            SentRecord {
                to: number(),
                submitted_at: 5,
                outcome: None
            }
            .to_bytes()[16..],
            [5, 0]
        );
        let account = |password_hash: Option<&str>| Account {
            id: 1,
            password_hash: password_hash.map(str::to_owned),
            created_at: 2,
        };
        assert_eq!(account(Some("h")).to_bytes(), [V1, 1, 1, b'h', 2]);
        assert_eq!(account(None).to_bytes(), [V2, 1, 0, 2]);
        let read = Account::from_bytes("accounts", &[V1, 1, 1, b'h', 2]).unwrap();
        assert_eq!(read.password_hash.as_deref(), Some("h"));
    }

    #[test]
    fn unknown_formats_and_damaged_records_are_refused_not_misread() {
        let bytes = logins()[0].to_bytes();
        for bad in [
            vec![],
            vec![2, 0, 0],
            bytes[..bytes.len() - 1].to_vec(),
            [&bytes[..], &[0]].concat(),
        ] {
            assert!(
                matches!(
                    LoginRecord::from_bytes("logins", &bad),
                    Err(StoreError::Corrupt { tree: "logins", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Outbound::from_bytes("outbox", &[9]).is_err());
    }
}
