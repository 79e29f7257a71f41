//! The registrar: gives each new account of the embedded auth core its password, beside the
//! login pipeline instead of inside it.
//!
//! A new number's login creates its account "password pending" and answers at once (see
//! [`EmbeddedAuth`](super::EmbeddedAuth)), so its session reaches the poller as fast as a
//! returning user's. This task takes the pending accounts (at start, which resumes whatever
//! a crash left, whenever the auth core says one was created, and every [`RESCAN`] for
//! marks another node left), makes a random password, hashes it on the bounded [`Hasher`]
//! pool, and hands the hash and the SMS carrying the password to the store in one write
//! ([`PasswordStore::store_password`]): the SMS is queued only with its hash, and nothing
//! queued leaves before it is durable. A crash before that write leaves the mark, and the
//! next start makes a new password; the one being hashed was never shown to anyone.
//!
//! The same rules as for every reply: no SMS to a number that opted out or lies outside
//! `[limits] reply_country_codes`. Such an account keeps no password (texting START, then
//! PASSWORD, gets one). The SMS spends the global budget's credentials share; while that is
//! spent the mark stays, and the password is made once the window ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use thiserror::Error;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::embedded::random_password;
use super::hasher::{HashError, Hasher};
use crate::core::auth::Credentials;
use crate::core::budget::SmsClass;
use crate::core::clock::Clock;
use crate::core::error::StoreError;
use crate::core::limits::{self, Limit, LimitsConfig};
use crate::core::live::Live;
use crate::core::msisdn::Msisdn;
use crate::core::replies::{Replies, Reply};
use crate::core::sms_budget::SmsBudget;
use crate::core::store::{OptOutStore, PasswordStore, PendingPassword};
use crate::smpp::text::billed_segments;

/// How often the store is asked again without a wake: for marks whose work failed, and for
/// those of another node (a shared store) whose lease lapsed.
pub const RESCAN: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
enum RegistrarError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Not a failure: the password waits for the budget's next window.
    #[error("the outbound SMS budget is spent")]
    BudgetSpent,
}

pub struct Registrar {
    pub store: Arc<dyn PasswordStore>,
    pub opt_outs: Arc<dyn OptOutStore>,
    pub hasher: Hasher,
    /// Reloadable (SIGHUP): the credentials template and the reply countries in force when
    /// each password is made.
    pub replies: Live<Replies>,
    pub limits: Live<LimitsConfig>,
    pub default_country_code: String,
    pub clock: Clock,
    /// Given to [`EmbeddedAuth::new`](super::EmbeddedAuth::new): told of each new account.
    pub wake: Arc<Notify>,
    pub sms_budget: SmsBudget,
}

impl Registrar {
    /// Runs until `stop` is cancelled. Work in hand is dropped then: its marks stay, and the
    /// next start makes those passwords anew.
    pub async fn run(self, stop: CancellationToken) {
        // Twice the hashing threads: each has its next password queued while it hashes.
        let room = self.hasher.threads() * 2;
        let mut in_hand: HashSet<Msisdn> = HashSet::new();
        let mut working = FuturesUnordered::new();
        let mut rescan = tokio::time::interval(RESCAN);
        let mut look = true;
        loop {
            if look && working.len() < room {
                look = false;
                let free = room - working.len();
                let skip = |m: &Msisdn| in_hand.contains(m);
                match self.store.pending_passwords(&skip, free).await {
                    Ok(found) => {
                        // A full answer may leave more behind.
                        look = found.len() == free;
                        for pending in found {
                            in_hand.insert(pending.msisdn.clone());
                            working.push(self.give(pending));
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "reading accounts whose password is pending failed")
                    }
                }
            }
            tokio::select! {
                Some((msisdn, done)) = working.next() => {
                    in_hand.remove(&msisdn);
                    match done {
                        Ok(()) => look = true,
                        // Tried again at the next rescan, not in a tight loop.
                        Err(RegistrarError::BudgetSpent) => {
                            debug!(to = %msisdn.masked(), "credentials wait for the SMS budget's next window")
                        }
                        Err(e) => warn!(to = %msisdn.masked(), error = %e, "making a new account's password failed; trying again later"),
                    }
                }
                _ = self.wake.notified() => look = true,
                _ = rescan.tick() => look = true,
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn give(&self, pending: PendingPassword) -> (Msisdn, Result<(), RegistrarError>) {
        let done = self.give_password(&pending).await;
        (pending.msisdn, done)
    }

    /// Makes, stores and queues the account's password, or only lifts the mark when the
    /// password may not be texted.
    async fn give_password(&self, pending: &PendingPassword) -> Result<(), RegistrarError> {
        let to = &pending.msisdn;
        let countries_ok = {
            let rules = self.limits.load();
            limits::reply_country_allowed(rules.reply_countries(&self.default_country_code), to)
        };
        if !countries_ok {
            metrics::counter!("moauth_limit_hits_total", "limit" => Limit::ReplyCountry.as_str())
                .increment(1);
            info!(to = %to.masked(), "credentials not sent: replies do not go to this country");
            self.store.store_password(pending, None).await?;
            return Ok(());
        }
        if self.opt_outs.opted_out(to).await? {
            metrics::counter!("moauth_sms_suppressed_total", "reason" => "opted_out").increment(1);
            info!(to = %to.masked(), "credentials not sent: the number opted out");
            self.store.store_password(pending, None).await?;
            return Ok(());
        }
        let password = random_password();
        let text = self.replies.load().render(&Reply::Credentials(Credentials {
            login: to.as_str().to_owned(),
            password: password.clone(),
        }));
        let segments = billed_segments(&text);
        let rules = self.limits.load();
        if !self
            .sms_budget
            .spend(SmsClass::Credentials, segments, &rules, self.clock.now())
            .await?
        {
            metrics::counter!("moauth_limit_hits_total", "limit" => Limit::SmsBudget.as_str())
                .increment(1);
            return Err(RegistrarError::BudgetSpent);
        }
        let hash = self.hasher.hash(password).await?;
        let sms = pending.to.clone().sms(to.clone(), text, self.clock.now());
        if self
            .store
            .store_password(pending, Some((&hash, &sms)))
            .await?
        {
            info!(to = %to.masked(), smsc = %sms.smsc, waited_secs = self.clock.now().saturating_sub(pending.since), "credentials queued");
        } else {
            debug!(to = %to.masked(), "account gone or given a password meanwhile; nothing sent");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::EmbeddedAuth;
    use crate::auth::config::Argon2Config;
    use crate::core::auth::{AuthCore, SessionCore};
    use crate::core::live::live;
    use crate::core::outbound::Outbound;
    use crate::core::replies::Templates;
    use crate::core::store::{AccountStore, OptOutStore, OutboxStore};
    use crate::store::sled::SledStore;

    const NOW: u64 = 1_700_000_000;

    /// A registrar and an auth core on one store, the credentials template the bare password.
    fn start(store: &Arc<SledStore>) -> (EmbeddedAuth, CancellationToken) {
        let hasher = Hasher::start(&Argon2Config::cheap()).unwrap();
        let wake = Arc::new(Notify::new());
        let clock = Clock::manual(NOW);
        let auth = EmbeddedAuth::new(
            store.clone(),
            clock.clone(),
            60,
            true,
            hasher.clone(),
            wake.clone(),
        );
        let registrar = Registrar {
            store: store.clone(),
            opt_outs: store.clone(),
            hasher,
            replies: live(Replies::from_config(&Templates {
                credentials: Some("{password}".into()),
                ..Templates::default()
            })),
            limits: live(LimitsConfig::default()),
            default_country_code: "86".into(),
            clock,
            wake,
            sms_budget: SmsBudget {
                counts: store.clone(),
                health: Default::default(),
            },
        };
        let stop = CancellationToken::new();
        tokio::spawn(registrar.run(stop.clone()));
        (auth, stop)
    }

    async fn outbox(store: &SledStore) -> Vec<Outbound> {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let mut changed = store.replies_queued();
                let queued = store.pending_replies("sim", &|_| false, 10).await.unwrap();
                if !queued.is_empty() {
                    return queued.into_iter().map(|(_, sms)| sms).collect();
                }
                changed.changed().await.unwrap();
            }
        })
        .await
        .expect("an SMS was queued")
    }

    #[tokio::test]
    async fn a_new_account_gets_a_stored_password_and_the_sms_that_carries_it() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let (auth, stop) = start(&store);
        let number = Msisdn::parse("+8613800138000").unwrap();
        let request = crate::auth::embedded::tests::request(1, number.as_str());
        assert!(auth.login(&request).await.unwrap().answer.created);
        let sms = outbox(&store).await;
        assert_eq!(sms.len(), 1);
        assert_eq!((&sms[0].to, sms[0].from.as_str()), (&number, "10690000"));
        let password = sms[0].text.clone();
        assert_eq!(password.len(), super::super::embedded::PASSWORD_LEN);
        let account = store.account(&number).await.unwrap().unwrap();
        assert!(
            account
                .password_hash
                .is_some_and(|h| !h.contains(&password))
        );
        assert!(
            store
                .pending_passwords(&|_| false, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let session = auth
            .password_login(number.as_str(), password)
            .await
            .unwrap();
        assert!(session.is_some(), "the texted password logs in");
        stop.cancel();
    }

    #[tokio::test]
    async fn an_opted_out_number_gets_no_password_and_no_sms() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let number = Msisdn::parse("+8613800138000").unwrap();
        store.set_opt_out(&number, true, NOW).await.unwrap();
        let (auth, stop) = start(&store);
        let request = crate::auth::embedded::tests::request(1, number.as_str());
        assert!(auth.login(&request).await.unwrap().answer.created);
        // A second, allowed number's SMS shows that the registrar has been past the first.
        let other = Msisdn::parse("+8613900139000").unwrap();
        let request = crate::auth::embedded::tests::request(2, other.as_str());
        auth.login(&request).await.unwrap();
        let sms = outbox(&store).await;
        assert_eq!(sms.iter().map(|s| &s.to).collect::<Vec<_>>(), [&other]);
        let account = store.account(&number).await.unwrap().unwrap();
        assert_eq!(account.password_hash, None);
        assert!(
            store
                .pending_passwords(&|_| false, 10)
                .await
                .unwrap()
                .is_empty()
        );
        stop.cancel();
    }
}
