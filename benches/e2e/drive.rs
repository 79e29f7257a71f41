//! Load through an SMSC: MOs at a fixed offered rate with a long-poller per login, and the
//! null ESME that gives the SMSC's own ceiling.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use futures::{SinkExt, StreamExt};
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use moauth::core::token::{Token, Verifier};
use moauth::sim::MoRequest;
use moauth::smpp::frame::{Inbound, SmppCodec};
use rusmpp::pdus::{BindTransceiver, DeliverSmResp};
use rusmpp::types::COctetString;
use rusmpp::{Command, CommandStatus, Pdu};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::smsc::Smsc;

/// The number of the `i`th bench user: distinct, valid E.164 (China mobile range).
pub fn number(i: usize) -> String {
    format!("+86139{i:08}")
}

/// A fresh login as an app makes it: the verifier it keeps and the SMS it opens.
pub struct Login {
    pub verifier: Verifier,
    pub token: Token,
}

impl Login {
    pub fn fresh() -> Login {
        let verifier = Verifier::random();
        let now = moauth::core::clock::Clock::System.now();
        Login {
            token: Token::for_verifier(&verifier, now),
            verifier,
        }
    }

    pub fn mo(&self, from: &str) -> MoRequest {
        MoRequest {
            from: from.to_owned(),
            to: Some("10690000".into()),
            text: format!("LOGIN {}", self.token),
            ..MoRequest::default()
        }
    }

    pub fn poll_body(&self, wait_ms: u64) -> serde_json::Value {
        json!({ "verifier": self.verifier.to_base64url(), "token": self.token.to_string(), "wait_ms": wait_ms })
    }
}

/// MO → session latencies seen by a long-poller at `rate` MO/s for `duration`: each poll is
/// opened `lead` before its MO is sent.
pub async fn offered(
    smsc: &Smsc,
    http: &reqwest::Client,
    poll_url: &str,
    users: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Offered> {
    let lead = Duration::from_millis(20);
    let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now() + lead;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let send_at = start + period * i as u32;
        tokio::time::sleep_until(send_at - lead).await;
        let login = Login::fresh();
        let mo = login.mo(&number(i % users));
        let request = http.post(poll_url).json(&login.poll_body(10_000));
        let smsc = smsc.clone();
        tasks.push(tokio::spawn(async move {
            let poll = tokio::spawn(request.send());
            tokio::time::sleep_until(send_at).await;
            let sent = Instant::now();
            smsc.send_mo(&mo).await?;
            let answer: serde_json::Value = poll.await??.json().await?;
            Ok::<_, anyhow::Error>((answer["state"] == "complete").then(|| sent.elapsed()))
        }));
    }
    let mut outcome = Offered::default();
    for task in tasks {
        match task.await? {
            Ok(Some(latency)) => outcome.latencies.push(latency),
            Ok(None) => outcome.no_session += 1,
            Err(e) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    outcome.latencies.sort();
    Ok(outcome)
}

/// What the long-pollers saw at one offered load.
#[derive(Default)]
pub struct Offered {
    /// MO sent → session answered, sorted.
    pub latencies: Vec<Duration>,
    /// Polls that ended (after 10 s) without a session.
    pub no_session: usize,
    /// MOs or polls that failed outright (refused, reset), and the first reason.
    pub errors: usize,
    pub first_error: Option<String>,
}

/// `q`-quantile of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// An ESME that binds to `smsc` and answers every deliver_sm at once, storing nothing: what
/// the SMSC and the driver reach when the ESME costs nothing.
pub async fn null_esme(smsc: &Smsc) -> anyhow::Result<()> {
    let stream = TcpStream::connect(smsc.addr()).await?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, SmppCodec::new(70_000));
    let bind = BindTransceiver::builder()
        .system_id(COctetString::from_str(SIM_SYSTEM_ID)?)
        .password(COctetString::from_str(SIM_PASSWORD)?)
        .build();
    framed
        .send(Command::new(CommandStatus::EsmeRok, 1, Pdu::from(bind)))
        .await?;
    match framed.next().await {
        Some(Ok(Inbound::Command(resp))) if resp.status() == CommandStatus::EsmeRok => {}
        other => bail!("null ESME bind refused: {other:?}"),
    }
    tokio::spawn(async move {
        while let Some(Ok(Inbound::Command(command))) = framed.next().await {
            if let Some(Pdu::DeliverSm(_)) = command.pdu() {
                let ack = Command::new(
                    CommandStatus::EsmeRok,
                    command.sequence_number(),
                    DeliverSmResp::default(),
                );
                if framed.send(ack).await.is_err() {
                    return;
                }
            }
        }
    });
    ensure!(
        smsc.wait_bound(1, Duration::from_secs(10)).await,
        "null ESME not bound"
    );
    Ok(())
}
