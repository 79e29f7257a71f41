//! `moauth store export` / `import`: every record a running daemon needs, in one file that
//! either backend writes and reads, so an operator can move a store between sled and
//! PostgreSQL and keep a backup of either. protocol/store-export.md is the contract.
//!
//! The format is JSON Lines: a header (format version, the moauth that wrote it), one record
//! per line tagged by `kind`, and a trailer with the record count, so a file cut short (a full
//! disk, a killed export) is refused rather than imported in part. Records are written and
//! read one at a time: no store has to fit in memory.
//!
//! Payloads reuse the core types' JSON forms (`LoginRecord`, `MoMessage`, `Outbound`, …),
//! which are frozen already: the sled store still reads its records written in them by
//! earlier releases. `the_format_is_pinned` fails on any change to what a line looks like.
//!
//! Backends take part through [`ImportTarget`] (and an export function each, streaming into a
//! [`Writer`]); [`import`] is the one driver that checks the header, the target's emptiness
//! and the trailer, and names the line of whatever goes wrong.

use std::io::{BufRead, Write};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::auth::{Account, AuthAnswer};
use crate::core::clock::UnixSecs;
use crate::core::error::StoreError;
use crate::core::login::{LoginRecord, MintedLogin};
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, QueuedEvent, SentRecord};
use crate::core::token::Challenge;

/// The format version this build writes and the only one it reads.
pub const FORMAT: u32 = 1;

/// What the first line says.
const HEADER_KIND: &str = "moauth-store-export";

/// The first line of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub kind: String,
    pub format: u32,
    /// The moauth version that wrote the file.
    pub moauth: String,
    /// The backend it came from: `sled` or `postgres`.
    pub backend: String,
    pub exported_at: UnixSecs,
}

/// One record. The order of the variants is the order of an export; an import needs only
/// accounts before their sessions and pending passwords.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// An account of the embedded auth core: its id (which apps may keep), number and
    /// password hash.
    Account { msisdn: Msisdn, account: Account },
    /// An account created without its password, which is still to be made and texted.
    PasswordPending {
        account_id: u64,
        msisdn: Msisdn,
        /// The SMSC connection and short code the password goes out through.
        smsc: String,
        from: String,
        since: UnixSecs,
    },
    /// A live session, by the SHA-256 of its token (hex): the token itself is never stored.
    Session {
        hash: String,
        account_id: u64,
        expires_at: UnixSecs,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_at: Option<UnixSecs>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msisdn: Option<Msisdn>,
    },
    /// The auth core's answer to an MO whose login is not yet committed (holds its session
    /// and, for a new account, the password in clear).
    AuthAnswer { request_id: u64, answer: AuthAnswer },
    /// A login's recorded state, by its token's challenge.
    Login {
        challenge: String,
        record: LoginRecord,
    },
    /// A login a backend minted; `due` while its expiry is still to be recorded.
    Minted {
        challenge: String,
        login: MintedLogin,
        due: bool,
    },
    /// An MO acknowledged and not yet processed; `id` is its arrival order.
    Inbox { id: u64, mo: MoMessage },
    /// A redelivery digest (hex) and when its MO came.
    Seen { digest: String, seen_at: UnixSecs },
    /// A part of a concatenated MO waiting for its siblings; `group` is hex.
    Part {
        group: String,
        seq: u8,
        total: u8,
        mo: MoMessage,
    },
    /// An MO kept aside as unreadable, under its inbox id.
    Rejected { id: u64, rejected: RejectedMo },
    /// A reply waiting for an SMSC (a credential SMS holds a password in clear).
    Outbox { id: u64, reply: Outbound },
    /// An SMS an SMSC accepted, by the message id it gave, for its delivery receipt.
    Sent {
        smsc: String,
        message_id: String,
        record: SentRecord,
    },
    /// A webhook event waiting for its backend to answer 2xx.
    Webhook { id: u64, event: QueuedEvent },
    /// A number that texted STOP, and since when.
    OptOut { msisdn: Msisdn, since: UnixSecs },
    /// The global SMS budget's count for the current `hour` or `day` (`period`), in its
    /// window (the hour or day number since the epoch).
    SmsBudget {
        period: String,
        window: u64,
        count: u64,
    },
    /// The last line: how many records came before it.
    End { records: u64 },
}

impl Item {
    /// The record's `kind`, for messages (the record itself may hold secrets).
    pub fn kind(&self) -> &'static str {
        match self {
            Item::Account { .. } => "account",
            Item::PasswordPending { .. } => "password_pending",
            Item::Session { .. } => "session",
            Item::AuthAnswer { .. } => "auth_answer",
            Item::Login { .. } => "login",
            Item::Minted { .. } => "minted",
            Item::Inbox { .. } => "inbox",
            Item::Seen { .. } => "seen",
            Item::Part { .. } => "part",
            Item::Rejected { .. } => "rejected",
            Item::Outbox { .. } => "outbox",
            Item::Sent { .. } => "sent",
            Item::Webhook { .. } => "webhook",
            Item::OptOut { .. } => "opt_out",
            Item::SmsBudget { .. } => "sms_budget",
            Item::End { .. } => "end",
        }
    }
}

/// Only the kind: records hold password hashes, session digests and passwords.
impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Item({})", self.kind())
    }
}

#[derive(Debug, Error)]
pub enum MoveError {
    #[error("writing the export: {0}")]
    Write(std::io::Error),
    #[error("reading the export: {0}")]
    Read(std::io::Error),
    #[error("line 1: not a moauth store export ({0})")]
    NotAnExport(String),
    #[error(
        "line 1: export format {found}, this moauth ({}) reads format {FORMAT} only",
        env!("CARGO_PKG_VERSION")
    )]
    UnknownFormat { found: u32 },
    #[error("line {line}: {message}")]
    BadLine { line: u64, message: String },
    #[error(
        "the file ends after line {lines} without its closing `end` record: the export was \
         cut short; nothing was imported"
    )]
    Truncated { lines: u64 },
    #[error(
        "the target store is not empty: import into a new store, or give --replace to \
         discard what it holds"
    )]
    NotEmpty,
    #[error("line {line} ({kind}): {source}")]
    Rejected {
        line: u64,
        kind: &'static str,
        source: StoreError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes an export: the header now, one line per [`Writer::put`], the trailer at
/// [`Writer::finish`].
pub struct Writer<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, backend: &str, now: UnixSecs) -> Result<Writer<W>, MoveError> {
        let header = Header {
            kind: HEADER_KIND.into(),
            format: FORMAT,
            moauth: env!("CARGO_PKG_VERSION").into(),
            backend: backend.into(),
            exported_at: now,
        };
        line(&mut out, &header)?;
        Ok(Writer { out, records: 0 })
    }

    pub fn put(&mut self, item: &Item) -> Result<(), MoveError> {
        line(&mut self.out, item)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer and flushes; returns how many records were written.
    pub fn finish(mut self) -> Result<u64, MoveError> {
        line(
            &mut self.out,
            &Item::End {
                records: self.records,
            },
        )?;
        self.out.flush().map_err(MoveError::Write)?;
        Ok(self.records)
    }
}

fn line(out: &mut impl Write, value: &impl Serialize) -> Result<(), MoveError> {
    serde_json::to_writer(&mut *out, value)
        .map_err(|e| MoveError::Write(std::io::Error::other(e)))?;
    out.write_all(b"\n").map_err(MoveError::Write)
}

/// Reads an export line by line; the header is checked when it is made.
pub struct Reader<R: BufRead> {
    input: R,
    line: u64,
    records: u64,
    ended: bool,
    buf: String,
    pub header: Header,
}

impl<R: BufRead> Reader<R> {
    pub fn new(mut input: R) -> Result<Reader<R>, MoveError> {
        let mut buf = String::new();
        input.read_line(&mut buf).map_err(MoveError::Read)?;
        let header: Header =
            serde_json::from_str(&buf).map_err(|e| MoveError::NotAnExport(e.to_string()))?;
        if header.kind != HEADER_KIND {
            return Err(MoveError::NotAnExport(format!(
                "its first line is a {:?}",
                header.kind
            )));
        }
        if header.format != FORMAT {
            return Err(MoveError::UnknownFormat {
                found: header.format,
            });
        }
        Ok(Reader {
            input,
            line: 1,
            records: 0,
            ended: false,
            buf,
            header,
        })
    }

    /// The next record and its line number; None after the trailer, which must be there and
    /// must count the records before it.
    pub fn next_item(&mut self) -> Result<Option<(u64, Item)>, MoveError> {
        if self.ended {
            return Ok(None);
        }
        self.buf.clear();
        let read = self
            .input
            .read_line(&mut self.buf)
            .map_err(MoveError::Read)?;
        if read == 0 {
            return Err(MoveError::Truncated { lines: self.line });
        }
        self.line += 1;
        let line = self.line;
        let bad = |message: String| MoveError::BadLine { line, message };
        if !self.buf.ends_with('\n') {
            return Err(MoveError::Truncated { lines: line });
        }
        let item: Item = serde_json::from_str(&self.buf).map_err(|e| bad(e.to_string()))?;
        if let Item::End { records } = item {
            if records != self.records {
                return Err(bad(format!(
                    "the trailer counts {records} records, the file holds {}",
                    self.records
                )));
            }
            self.buf.clear();
            if self
                .input
                .read_line(&mut self.buf)
                .map_err(MoveError::Read)?
                != 0
            {
                return Err(bad("lines follow the closing `end` record".into()));
            }
            self.ended = true;
            return Ok(None);
        }
        self.records += 1;
        Ok(Some((line, item)))
    }
}

/// A store being filled by an import. Everything it is given becomes visible at
/// [`ImportTarget::finish`], or nothing does (see each backend for how).
pub trait ImportTarget: Send {
    /// Whether the store holds no record at all.
    fn is_empty(&mut self) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Discards every record (`--replace`).
    fn clear(&mut self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Stores one record, line `line` of the file, as it was in the store exported. A target
    /// may hold records back and store several at once: a refusal may then come from a later
    /// call or from `finish`, naming its own line ([`MoveError::Rejected`]).
    fn put(&mut self, line: u64, item: Item) -> BoxFuture<'_, Result<(), MoveError>>;

    /// Stores what is held back and makes the import whole and durable.
    fn finish(self) -> BoxFuture<'static, Result<(), MoveError>>;
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub records: u64,
    pub from: Header,
}

/// Reads every record of `reader` into `target`: refused if the target holds anything and
/// `replace` is false; a bad line, a record the target refuses or a missing trailer stop it
/// before [`ImportTarget::finish`], so nothing of it becomes visible.
pub async fn import<R: BufRead, T: ImportTarget>(
    mut reader: Reader<R>,
    mut target: T,
    replace: bool,
) -> Result<Imported, MoveError> {
    if !target.is_empty().await? {
        if !replace {
            return Err(MoveError::NotEmpty);
        }
        target.clear().await?;
    }
    let mut records = 0;
    while let Some((line, item)) = reader.next_item()? {
        target.put(line, item).await?;
        records += 1;
    }
    target.finish().await?;
    Ok(Imported {
        records,
        from: reader.header,
    })
}

/// Bytes as lower-case hex, and back, for keys and digests.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub fn from_hex(field: &str, text: &str) -> Result<Vec<u8>, StoreError> {
    hex::decode(text).map_err(|e| invalid(format!("{field}: {e}")))
}

/// A `session` record's `hash`: the SHA-256 of its token.
pub fn session_hash(hash: &str) -> Result<[u8; 32], StoreError> {
    from_hex("hash", hash)?
        .try_into()
        .map_err(|_| invalid("hash: not a SHA-256"))
}

/// A `part` record's `group` as the stores key it: it must end with the part count.
pub fn part_group(group: &str, total: u8) -> Result<Vec<u8>, StoreError> {
    let group = from_hex("group", group)?;
    if group.last() != Some(&total) {
        return Err(invalid("a part's group ends with its count"));
    }
    Ok(group)
}

/// A record's `challenge`: the token's 20 challenge symbols, as the stores key logins.
pub fn challenge_from(text: &str) -> Result<Challenge, StoreError> {
    Challenge::from_bytes(text.as_bytes())
        .ok_or_else(|| invalid(format!("{text:?} is not a token challenge")))
}

/// A record a target cannot take as it stands.
pub fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        tree: "export",
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
