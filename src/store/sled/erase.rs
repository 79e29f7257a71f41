//! Erasing a number (a right-to-erasure request): every record that names it, in every tree.
//!
//! Rare and operator-driven, so it scans instead of keeping an index per number: the account
//! and its sessions, the login records, unsettled auth answers, queued and sent SMS, MOs in
//! the inbox, in the parts and among the rejected ones, and the opt-out. What is left holds no
//! number in clear: redelivery digests are hashes, webhook events carry the masked form.
//! Each removal is durable after `sync`; a crash midway leaves the rest for a second run.

use super::record::Record;
use super::{SledStore, StoreError, decode};
use crate::core::auth::AuthAnswer;
use crate::core::login::LoginRecord;
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::{Outbound, SentRecord};

/// Whether an MO came from `number`: its sender's digits are the number's, or its national
/// tail (an SMSC that leaves out the country code). Six digits at least, so a short code
/// never matches.
pub(crate) fn sent_by(mo: &MoMessage, number: &Msisdn) -> bool {
    let digits = mo.source_addr.trim_start_matches('+');
    digits.len() >= 6
        && digits.bytes().all(|b| b.is_ascii_digit())
        && number.digits().ends_with(digits)
}

impl SledStore {
    /// Removes every record naming `number`; returns how many went.
    pub(super) fn erase(&self, number: &Msisdn) -> Result<usize, StoreError> {
        let mut erased = 0;
        if let Some(account) = self.accounts.get(number)?
            && self
                .accounts
                .pending
                .remove(account.id.to_be_bytes())?
                .is_some()
        {
            erased += 1;
            self.passwords_pending.sub(1);
        }
        erased += self.accounts.erase(number)?;
        erased += remove_if::<LoginRecord>(&self.logins.tree, "logins", |r| {
            r.msisdn.as_ref() == Some(number)
        })?;
        // A session whose take awaits a flush is read from memory, not the tree.
        self.logins.forget_untaken(number);
        // The queues' gauges count what left them, as their own removals do.
        let outbox = remove_if::<Outbound>(&self.outbox.tree, "outbox", |o| &o.to == number)?;
        self.outbox.depth.sub(outbox);
        let inbox = remove_if::<MoMessage>(&self.inbox.tree, "inbox", |mo| sent_by(mo, number))?;
        self.inbox.depth.sub(inbox);
        let parts = remove_if::<MoMessage>(&self.parts.tree, "parts", |mo| sent_by(mo, number))?;
        self.parts.depth.sub(parts);
        erased += outbox + inbox + parts;
        erased += remove_if::<SentRecord>(&self.sent.tree, "sent", |s| &s.to == number)?;
        erased +=
            remove_if::<RejectedMo>(&self.rejected.tree, "rejected", |r| sent_by(&r.mo, number))?;
        erased += usize::from(self.opt_outs.remove(number.as_str())?.is_some());
        Ok(erased)
    }
}

/// Removes the records of `tree` that `erase` picks; returns how many it removed (not one
/// another writer took first, which that writer counts).
fn remove_if<T: Record>(
    tree: &sled::Tree,
    name: &'static str,
    erase: impl Fn(&T) -> bool,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in tree.iter() {
        let (key, value) = entry?;
        if erase(&decode(name, &value)?) && tree.remove(key)?.is_some() {
            removed += 1;
        }
    }
    Ok(removed)
}

impl super::accounts::Accounts {
    /// The account, every session naming the number or its account
    /// (by the index, and by a scan for any the index lost), and unsettled answers for the
    /// account or holding its credentials.
    pub(super) fn erase(&self, number: &Msisdn) -> Result<usize, StoreError> {
        let mut erased = 0;
        let account = self.get(number)?;
        if let Some(account) = &account {
            erased += self.revoke_all(account.id)?;
            erased += usize::from(self.remove_account(number)?);
        }
        for key in self.sessions_naming(number)? {
            erased += usize::from(self.revoke(&key)?);
        }
        let account_id = account.map(|a| a.id.to_string());
        erased += remove_if::<AuthAnswer>(self.answers_tree(), "auth_receipts", |a| {
            Some(&a.account_id) == account_id.as_ref()
                || a.credentials
                    .as_ref()
                    .is_some_and(|c| c.login == number.as_str())
        })?;
        Ok(erased)
    }
}
