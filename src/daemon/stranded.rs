//! Replies queued for an `[[smsc]]` that no longer exists (renamed or removed from the file):
//! each link asks the outbox only for its own name, so without this they would wait for ever
//! and nothing would say so.
//!
//! At start and on reload, each such reply goes to a configured connection with the short
//! code it was sent from (its `from`); what no connection can take is reported loudly (an
//! error line, the `moauth_outbox_stranded` gauge, `moauth status`) with the commands that
//! move or drop it. Those commands ([`reroute`], [`drop`]) work on the store directly: on the
//! embedded store only while moauth is stopped (it holds the store's lock), on PostgreSQL at
//! any time. On PostgreSQL a node judges by its own file, so nodes sharing a database are
//! expected to share their `[[smsc]]` names.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use tracing::{error, info};

use super::{DaemonError, open_store};
use crate::core::error::StoreError;
use crate::core::store::OutboxRoutes;
use crate::ops::config::{Config, SmscConfig};
use crate::store::sled::OpenError;

/// Replies no configured connection sends, by the SMSC name they wait for; shown by
/// `moauth status`.
#[derive(Clone, Default)]
pub struct StrandedReplies(Arc<Mutex<BTreeMap<String, u64>>>);

impl StrandedReplies {
    pub fn get(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("stranded lock").clone()
    }

    fn set(&self, stranded: BTreeMap<String, u64>) {
        let mut current = self.0.lock().expect("stranded lock");
        // A name that had stranded replies and has none now shows 0, not a stale count.
        for (name, _) in current.iter().filter(|(n, _)| !stranded.contains_key(*n)) {
            metrics::gauge!("moauth_outbox_stranded", "smsc" => name.clone()).set(0.0);
        }
        for (name, count) in &stranded {
            metrics::gauge!("moauth_outbox_stranded", "smsc" => name.clone()).set(*count as f64);
        }
        *current = stranded;
    }
}

/// The commands that move or drop the replies queued for `smsc`, for logs and status.
pub fn remedy(smsc: &str) -> String {
    format!(
        "stop moauth, then `moauth outbox reroute --from {smsc} --to NAME` (NAME a configured \
         [[smsc]]) or `moauth outbox drop --smsc {smsc}`"
    )
}

/// Moves the replies of gone connections to a configured one with their short code and
/// reports the rest. Durable: synced before it returns, when it moved anything.
///
/// One look at the outbox when every name it holds is configured (the usual reload): the
/// flush and the second count are only for when replies moved.
pub async fn reconcile(
    store: &dyn OutboxRoutes,
    smsc: &[SmscConfig],
    stranded: &StrandedReplies,
) -> Result<(), StoreError> {
    let known = |name: &str| smsc.iter().any(|s| s.name == name);
    let by_short_code = |from: &str| -> Option<String> {
        Some(smsc.iter().find(|s| s.short_code == from)?.name.clone())
    };
    let gone: BTreeMap<String, u64> = store
        .queued_per_smsc()
        .await?
        .into_iter()
        .filter(|(name, _)| !known(name))
        .collect();
    let mut moved_any = false;
    for name in gone.keys() {
        let moved = store
            .reroute_replies(name, &|reply| by_short_code(&reply.from))
            .await?;
        if moved > 0 {
            moved_any = true;
            info!(from = %name, moved, "replies queued for an [[smsc]] that no longer exists go out through the connection with their short code");
        }
    }
    let left = if moved_any {
        store.sync().await?;
        store
            .queued_per_smsc()
            .await?
            .into_iter()
            .filter(|(name, _)| !known(name))
            .collect()
    } else {
        gone
    };
    for (gone, count) in &left {
        error!(smsc = %gone, replies = count, remedy = %remedy(gone), "replies are queued for an [[smsc]] that no longer exists and no connection has their short code: they will not be sent");
    }
    stranded.set(left);
    Ok(())
}

/// The store of `config`, for a command run beside (or instead of) the daemon.
async fn open_for_command(config: &Config) -> anyhow::Result<Arc<dyn crate::core::store::Store>> {
    match open_store(config).await {
        Ok(store) => Ok(store),
        Err(DaemonError::StoreOpen(locked @ OpenError::Locked { .. })) => {
            Err(anyhow::Error::new(locked).context(crate::store::sled::STOP_IT_FIRST))
        }
        Err(e) => Err(e.into()),
    }
}

/// `moauth outbox list`: replies waiting per SMSC name, and which names are not configured.
pub async fn list(config: &Config) -> anyhow::Result<String> {
    let store = open_for_command(config).await?;
    let mut out = String::new();
    for (name, count) in store.queued_per_smsc().await? {
        let note = if config.smsc.iter().any(|s| s.name == name) {
            String::new()
        } else {
            format!("  no such [[smsc]]: {}", remedy(&name))
        };
        out.push_str(&format!("{name:<16} {count:>8}{note}\n"));
    }
    Ok(out)
}

/// `moauth outbox reroute --from OLD --to NEW`: NEW must be a configured connection.
pub async fn reroute(config: &Config, from: &str, to: &str) -> anyhow::Result<u64> {
    if !config.smsc.iter().any(|s| s.name == to) {
        let names: Vec<&str> = config.smsc.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "--to {to:?} is no [[smsc]] in the config (there are: {})",
            names.join(", ")
        );
    }
    let store = open_for_command(config).await?;
    let moved = store
        .reroute_replies(from, &|_| Some(to.to_owned()))
        .await
        .context("moving the replies")?;
    store.sync().await?;
    Ok(moved)
}

/// `moauth outbox drop --smsc OLD`: the replies queued for OLD are deleted, unsent.
pub async fn drop(config: &Config, smsc: &str) -> anyhow::Result<u64> {
    let store = open_for_command(config).await?;
    let dropped = store
        .drop_replies(smsc)
        .await
        .context("dropping the replies")?;
    store.sync().await?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{StrandedReplies, reconcile};
    use crate::core::mo::MoMessage;
    use crate::core::msisdn::Msisdn;
    use crate::core::outbound::Outbound;
    use crate::core::store::{
        Depths, IngestStore, OutboxRoutes, Outcome, PipelineStore, StoreBase, StoreFuture,
    };
    use crate::ops::config::SmscConfig;
    use crate::store::sled::SledStore;

    /// A sled store that counts the outbox scans and syncs asked of it.
    struct Counting {
        store: SledStore,
        scans: AtomicUsize,
        syncs: AtomicUsize,
    }

    impl StoreBase for Counting {
        fn sync(&self) -> StoreFuture<'_, ()> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.store.sync()
        }

        fn depths(&self) -> Depths {
            self.store.depths()
        }

        fn poll_waiters(&self) -> usize {
            self.store.poll_waiters()
        }
    }

    impl OutboxRoutes for Counting {
        fn queued_per_smsc(&self) -> StoreFuture<'_, BTreeMap<String, u64>> {
            self.scans.fetch_add(1, Ordering::SeqCst);
            self.store.queued_per_smsc()
        }

        fn reroute_replies<'a>(
            &'a self,
            from: &'a str,
            to: &'a (dyn Fn(&Outbound) -> Option<String> + Send + Sync),
        ) -> StoreFuture<'a, u64> {
            self.store.reroute_replies(from, to)
        }

        fn drop_replies<'a>(&'a self, smsc: &'a str) -> StoreFuture<'a, u64> {
            self.store.drop_replies(smsc)
        }
    }

    /// A reply queued for `smsc`, as the pipeline queues one.
    async fn queue_reply(store: &SledStore, smsc: &str) {
        let mo = MoMessage {
            smsc: smsc.into(),
            source_addr: "8613800138000".into(),
            source_ton: 1,
            destination_addr: "10690000".into(),
            esm_class: 0,
            data_coding: 1,
            user_data: b"HELP".to_vec(),
            sar: None,
            received_at: 1_700_000_000,
        };
        store.append_mos(&[mo], 600).await.unwrap();
        let (id, _) = store.oldest_mos(1).await.unwrap().remove(0);
        let reply = Outbound {
            smsc: smsc.into(),
            from: "10690000".into(),
            to: Msisdn::parse("+8613800138000").unwrap(),
            text: "help".into(),
            created_at: 1_700_000_000,
        };
        let outcome = Outcome::Decided {
            mo: id,
            login: None,
            session: None,
            replies: vec![reply],
            event: None,
        };
        store.commit_outcomes(&[outcome]).await.unwrap();
    }

    /// A reload with the same `[[smsc]]` names and only their replies queued finds nothing
    /// to move: one look at the outbox, no second count and no flush.
    #[tokio::test]
    async fn a_reconcile_with_no_gone_smsc_looks_once_and_flushes_nothing() {
        let store = SledStore::temporary().unwrap();
        queue_reply(&store, "main").await;
        let counting = Counting {
            store,
            scans: AtomicUsize::new(0),
            syncs: AtomicUsize::new(0),
        };
        let smsc: SmscConfig = toml::from_str(
            r#"name = "main"
               address = "127.0.0.1:2775"
               system_id = "moauth"
               password = "secret"
               short_code = "10690000""#,
        )
        .unwrap();
        let stranded = StrandedReplies::default();
        reconcile(&counting, &[smsc], &stranded).await.unwrap();
        assert!(stranded.get().is_empty());
        assert_eq!(
            (
                counting.scans.load(Ordering::SeqCst),
                counting.syncs.load(Ordering::SeqCst)
            ),
            (1, 0)
        );
    }
}
