//! LISTEN/NOTIFY: how a commit on one node wakes waiters on every node.
//!
//! Writers call `pg_notify` inside the transaction that changes something (a login's state,
//! new inbox or outbox rows, a queued webhook event); PostgreSQL delivers it to every
//! listening session when, and only if, that transaction commits. Each node keeps one
//! connection of its own listening (not a pooled one: its messages must be read as they come)
//! and turns notifications into in-process wake-ups.
//!
//! Notifications sent while the listening connection was down are lost, so after every
//! (re)connect the node is told [`Wake::Gap`]: every waiter reads the database again rather
//! than trusting that nothing happened.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::core::token::Challenge;

/// The channels moauth notifies on.
pub(super) const LOGIN_CHANNEL: &str = "moauth_login";
pub(super) const INBOX_CHANNEL: &str = "moauth_inbox";
pub(super) const OUTBOX_CHANNEL: &str = "moauth_outbox";
pub(super) const WEBHOOK_CHANNEL: &str = "moauth_webhooks";

/// What a notification means to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A login's state changed (its challenge).
    Login(Challenge),
    /// MOs were committed to the inbox.
    Inbox,
    /// Replies were queued for this SMSC connection.
    Outbox(String),
    Webhooks,
    /// The listening connection was (re)established: anything may have changed meanwhile.
    Gap,
}

fn wake_for(channel: &str, payload: &str) -> Option<Wake> {
    match channel {
        LOGIN_CHANNEL => Challenge::from_bytes(payload.as_bytes()).map(Wake::Login),
        INBOX_CHANNEL => Some(Wake::Inbox),
        OUTBOX_CHANNEL => Some(Wake::Outbox(payload.to_owned())),
        WEBHOOK_CHANNEL => Some(Wake::Webhooks),
        _ => None,
    }
}

/// Keeps a connection listening until `stop`, reconnecting with backoff, and hands every
/// notification to `wake`. The receiver says whether it is listening right now.
pub(super) fn spawn(
    config: tokio_postgres::Config,
    wake: Arc<dyn Fn(Wake) + Send + Sync>,
    stop: CancellationToken,
) -> watch::Receiver<bool> {
    let (listening, state) = watch::channel(false);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let session = listen(&config, &wake, &mut backoff, &listening);
            tokio::select! {
                _ = stop.cancelled() => return,
                ended = session => match ended {
                    Ok(()) => debug!("postgres: listening connection closed"),
                    Err(e) => warn!("postgres: listening connection: {e}"),
                },
            }
            listening.send_replace(false);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    state
}

/// One listening session: connect, LISTEN, announce the gap, then forward until it drops.
async fn listen(
    config: &tokio_postgres::Config,
    wake: &Arc<dyn Fn(Wake) + Send + Sync>,
    backoff: &mut Duration,
    listening: &watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let forward = {
        let wake = wake.clone();
        async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                if let AsyncMessage::Notification(n) = message?
                    && let Some(w) = wake_for(n.channel(), n.payload())
                {
                    wake(w);
                }
            }
            Ok(())
        }
    };
    let subscribe = async {
        client
            .batch_execute(&format!(
                "LISTEN {LOGIN_CHANNEL}; LISTEN {INBOX_CHANNEL}; \
                 LISTEN {OUTBOX_CHANNEL}; LISTEN {WEBHOOK_CHANNEL}"
            ))
            .await?;
        *backoff = Duration::from_millis(100);
        listening.send_replace(true);
        wake(Wake::Gap);
        // Keep the client (and so the session) alive while the connection forwards.
        futures::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::pin!(forward, subscribe);
    tokio::select! {
        ended = &mut forward => ended,
        failed = &mut subscribe => failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::Verifier;

    #[test]
    fn a_login_notification_names_its_challenge() {
        let challenge = Verifier::random().challenge();
        assert_eq!(
            wake_for(LOGIN_CHANNEL, challenge.as_str()),
            Some(Wake::Login(challenge))
        );
        assert_eq!(wake_for(LOGIN_CHANNEL, "not a challenge"), None);
        assert_eq!(
            wake_for(OUTBOX_CHANNEL, "sim"),
            Some(Wake::Outbox("sim".into()))
        );
    }
}
