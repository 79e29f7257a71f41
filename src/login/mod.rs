//! The MO → session pipeline: one worker drains the durable inbox in arrival order.
//!
//! For each MO: decode the text, parse the body, [`decide`](decide::decide), ask the auth
//! core when the token is fresh. The outcomes of a whole round (login states, replies,
//! events, the MOs' removal from the inbox) are then committed in one transaction and made
//! durable by one flush ([`batch`]). An MO leaves the inbox only with its outcome, so a crash
//! at any point means it is processed again, and the auth core's request-id deduplication
//! makes the second pass give the same answer.
//!
//! An auth core that cannot answer stops the batch: its MO stays first in the inbox, the
//! worker backs off and asks again, and the MOs behind it wait their turn, so they are still
//! answered in order of arrival. Its login is marked waiting (polls say `pending`), and once
//! it has waited the core's `max_wait_secs` it is rejected with an apology SMS. A refusal is
//! final: `rejected/auth_core_refused` and its SMS.

mod batch;
pub mod concat;
pub mod config;
pub mod mint;
pub mod poll;
pub mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::arrivals::Arrivals;
use crate::core::auth::{AuthCore, AuthError, AuthRequest, ByNumber, Granted};
use crate::core::budget::SmsClass;
use crate::core::clock::{Clock, UnixSecs};
use crate::core::decide::{self, Decision, Unanswered, Window};
use crate::core::error::StoreError;
use crate::core::limits::LimitsConfig;
use crate::core::limits::{self, Limit, NumberLimits};
use crate::core::live::Live;
use crate::core::mo::{MoMessage, RejectedMo};
use crate::core::msisdn::Msisdn;
use crate::core::outbound::Outbound;
use crate::core::replies::{Replies, Reply};
use crate::core::sms_budget::SmsBudget;
use crate::core::store::{Filed, OptOutStore, Outcome, PartKey, PipelineStore, SweepDue};
use crate::core::token::{Command, Commands, parse_body_with};
use crate::smpp::{text, udh};
use crate::webhooks::Hooks;
use batch::{Batch, Completed};
use config::InboundConfig;
use report::{MoOutcome, MoReport};

/// MOs taken from the inbox per round; one transaction and one flush cover them all. A round
/// takes only what is waiting, so this bounds a backlog's rounds, not a quiet inbox's latency;
/// 256 rather than 64 spreads a round's fixed cost (sled's log rolls and its flush) over more
/// MOs when the SMSC delivers faster than the pipeline finishes them.
const BATCH: usize = 256;
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How long rejected MOs stay for an operator to look at.
const REJECTED_KEPT_SECS: u64 = 7 * 86_400;
/// An MO's arrival instant is kept this long for its latency; later, whole seconds do.
const ARRIVALS_KEPT: Duration = Duration::from_secs(600);
/// How long an accepted SMS is remembered for its delivery receipt: longer than any
/// validity period an SMSC keeps retrying for.
const SENT_KEPT_SECS: u64 = 7 * 86_400;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

pub struct LoginPipeline {
    pub store: Arc<dyn PipelineStore>,
    pub auth: Arc<dyn AuthCore>,
    /// Reloadable (SIGHUP): each MO reads the values current when it is processed.
    pub replies: Live<Replies>,
    pub window: Live<Window>,
    pub keywords: Live<Vec<String>>,
    pub default_country_code: String,
    pub inbound: InboundConfig,
    pub clock: Clock,
    /// Counts finished MOs, for the status report's rates.
    pub processed: Arc<AtomicU64>,
    /// Reloadable (SIGHUP) rules, and what was counted against them.
    pub limits: Live<LimitsConfig>,
    pub number_limits: Mutex<NumberLimits>,
    /// When each MO reached the process, for the MO → session latency in milliseconds.
    pub arrivals: Arrivals,
    /// Which recorded states go to a backend's webhook, and how.
    pub hooks: Hooks,
    /// Numbers that texted STOP: no SMS for them but START's answer.
    pub opt_outs: Arc<dyn OptOutStore>,
    /// The words of HELP, STOP, START, PASSWORD and LOGOUT (read at start).
    pub commands: Commands,
    /// `[login] notify_logins`: text an existing account after each login.
    pub notify_logins: bool,
    /// The global SMS budget (shared by the nodes of one store).
    pub sms_budget: SmsBudget,
}

impl LoginPipeline {
    /// Runs until `stop` is cancelled, finishing the MO in hand first.
    pub async fn run(self, stop: CancellationToken) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let mut logins_sweep = None;
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let arrived = self.store.mos_arrived();
            match self.drain_batch().await {
                Ok(0) => {
                    tokio::select! {
                        _ = arrived => {}
                        _ = sweep.tick() => self.sweep(&mut logins_sweep).await,
                        _ = stop.cancelled() => {}
                    }
                }
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    // A busy inbox must not put the sweep off for ever.
                    if sweep.tick().now_or_never().is_some() {
                        self.sweep(&mut logins_sweep).await;
                    }
                }
                Err(e) => {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "login pipeline paused");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Processes up to one batch; returns how many MOs were finished. An error stops the
    /// round: what was decided before it is committed, the rest is taken again next round.
    pub async fn drain_batch(&self) -> Result<usize, PipelineError> {
        let taken = self.store.oldest_mos(BATCH).await?;
        let mut batch = Batch::default();
        let mut done = 0;
        let mut result = Ok(());
        let mut finished = Vec::with_capacity(taken.len());
        for (id, mo) in taken {
            let digest = mo.digest();
            if let Err(e) = self.process(id, &mo, digest, &mut batch).await {
                result = Err(e);
                break;
            }
            finished.push(digest);
            done += 1;
        }
        if !batch.outcomes().is_empty() {
            self.store.commit_outcomes(batch.outcomes()).await?;
        }
        if !batch.settle.is_empty() {
            self.auth.settle(&batch.settle).await?;
        }
        if done > 0 {
            self.store.sync().await?;
            self.processed.fetch_add(done as u64, Ordering::Relaxed);
        }
        // Counted and logged once durable: an MO processed again after a failure counts once,
        // and no line tells of an outcome a crash could still undo.
        for report in &batch.reports {
            report.log();
        }
        // Finished: their arrivals are of no more use but for the logins' latency.
        let waited = self.arrivals.take_all(&finished, std::time::Instant::now());
        for login in batch.completed {
            let waited = waited.get(&login.digest).copied();
            self.count_completed(login, waited);
        }
        result.map(|()| done)
    }

    /// `waited`: since this process took the MO in, when it did.
    fn count_completed(&self, login: Completed, waited: Option<Duration>) {
        if login.created {
            let rules = self.limits.load();
            self.number_limits()
                .account_created(&rules, &login.sender, login.now);
            metrics::counter!("moauth_accounts_created_total").increment(1);
        }
        metrics::counter!("moauth_logins_completed_total").increment(1);
        // To the millisecond when this process took the MO in; else whole seconds.
        let seconds = waited.map_or_else(
            || self.clock.now().saturating_sub(login.received_at) as f64,
            |waited| waited.as_secs_f64(),
        );
        metrics::histogram!("moauth_mo_to_session_seconds").record(seconds);
    }

    /// Decides one MO into `batch`; only parts of concatenated MOs are written at once.
    async fn process(
        &self,
        id: u64,
        mo: &MoMessage,
        digest: [u8; 16],
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        let mut report = MoReport::new(id, mo, &self.default_country_code);
        match concat::split(mo) {
            Ok(Some(part)) => {
                let at = PartKey {
                    group: &part.group,
                    seq: part.concat.seq,
                    total: part.concat.total,
                };
                let filed = self
                    .store
                    .file_part(id, at, &part.payload, &concat::join)
                    .await?;
                let filed = match filed {
                    Filed::Waiting => "waiting for the others",
                    Filed::Duplicate => "duplicate, dropped",
                    Filed::Complete(_) => "complete",
                };
                debug!(
                    mo = id,
                    part = part.concat.seq,
                    of = part.concat.total,
                    filed,
                    "part of a longer SMS"
                );
                return Ok(());
            }
            Ok(None) => {}
            Err(e) => {
                let why = format!("malformed user data header: {e}");
                self.malformed(id, mo, report, why, batch);
                return Ok(());
            }
        }
        let sender =
            match Msisdn::from_smpp(&mo.source_addr, mo.source_ton, &self.default_country_code) {
                Ok(sender) => sender,
                Err(e) => {
                    let why = format!("sender cannot be answered: {e}");
                    self.malformed(id, mo, report, why, batch);
                    return Ok(());
                }
            };
        let text = match decode_text(mo) {
            Ok(text) => text,
            Err(reason) => {
                let why = format!("text undecodable: {reason}");
                self.malformed(id, mo, report, why, batch);
                return Ok(());
            }
        };
        let body = parse_body_with(&text, &self.keywords.load(), &self.commands);
        report.body(&body);
        let claimed = match &body {
            crate::core::token::Body::Login(token) => Some(token.challenge()),
            crate::core::token::Body::Bad {
                claimed: Some(c), ..
            } => Some(*c),
            _ => None,
        };
        let prior = match claimed {
            Some(c) => match batch.recorded(&c) {
                Some(decided) => Some(decided.clone()),
                None => self.store.login(&c).await?,
            },
            None => None,
        };
        let decision = decide::decide(
            &body,
            &sender,
            mo.received_at,
            prior.as_ref(),
            &self.window.load(),
        );
        let (now, rules) = (self.clock.now(), self.limits.load());
        let mut limited = None;
        let (decision, may_create) = match self.limit(&rules, id, &sender, &decision, now).await? {
            Err(limit) => {
                limited = Some(limit);
                count_rejected(limit.reason().as_str());
                let refused = limits::refuse(
                    decision,
                    limit,
                    &sender,
                    mo.received_at,
                    &self.window.load(),
                );
                (refused, false)
            }
            Ok(may_create) => (decision, may_create),
        };
        let mut completed = None;
        let mut session = None;
        let (record, reply, outcome) = match decision {
            Decision::Answer { record, reply } => {
                if let Some(reason) = reply.as_ref().and_then(Reply::rejection) {
                    count_rejected(reason);
                }
                let outcome = match limited {
                    Some(limit) => MoOutcome::Limited(limit),
                    None => MoOutcome::of_answer(reply.as_ref()),
                };
                (record, reply, outcome)
            }
            Decision::Command(command) => {
                let reply = self.command(command, &sender, &rules, now).await?;
                let outcome = match limited {
                    Some(limit) => MoOutcome::Limited(limit),
                    None => MoOutcome::Command(command_name(command)),
                };
                // A command past a limit still takes effect (STOP is honoured), silently.
                (None, reply.filter(|_| limited.is_none()), outcome)
            }
            Decision::LogIn(token) => {
                let request = AuthRequest {
                    request_id: id,
                    msisdn: sender.clone(),
                    token,
                    received_at: mo.received_at,
                    reply_via: mo.reply_route(),
                    may_create,
                };
                let window = self.window.load();
                let over_prefix = |report: &mut MoReport, why: String| {
                    let limit = Limit::NewAccountsPerPrefix;
                    report.detail(why);
                    limit_hit(limit);
                    count_rejected(limit.reason().as_str());
                    let record =
                        limits::refused_login(&token, limit, &sender, mo.received_at, &window);
                    (record, None, MoOutcome::Limited(limit))
                };
                let (record, reply, outcome) = match self.auth.login(&request).await {
                    // The prefix is over its limit and the core could not be asked beforehand
                    // whether it knows the number: it was asked to log it in only if known.
                    Err(AuthError::Refused(reason)) if !may_create => {
                        over_prefix(&mut report, format!("auth core: {reason}"))
                    }
                    // A core that ignores `may_create` made the account anyway: it counts,
                    // and the login is refused as the limit says, its credentials not sent.
                    Ok(granted) if granted.answer.created && !may_create => {
                        self.number_limits().account_created(&rules, &sender, now);
                        let why = "the auth core created an account past the prefix limit";
                        over_prefix(&mut report, why.into())
                    }
                    Ok(Granted { answer, session: s }) => {
                        session = s;
                        completed = Some(answer.created);
                        let outcome = if answer.created {
                            MoOutcome::Registered
                        } else {
                            MoOutcome::Completed
                        };
                        let notify = self.notify_logins && !answer.created;
                        let (record, credentials) =
                            decide::completed(&token, &sender, answer, self.clock.now(), &window);
                        let notice = notify.then(|| Reply::LoginNotice(self.clock.now()));
                        (record, credentials.or(notice), outcome)
                    }
                    Err(AuthError::Refused(reason)) => {
                        report.detail(format!("auth core: {reason}"));
                        count_rejected("auth_core_refused");
                        let (record, reply) =
                            decide::refused(&token, &sender, self.clock.now(), &window);
                        (
                            record,
                            Some(reply),
                            MoOutcome::Rejected("auth_core_refused"),
                        )
                    }
                    Err(AuthError::Unavailable(why)) => match decide::unanswered(
                        &token,
                        &sender,
                        mo.received_at,
                        self.clock.now(),
                        self.auth.max_wait_secs(),
                        &window,
                    ) {
                        Unanswered::Wait(record) => {
                            self.store.mark_waiting(&token.challenge(), &record).await?;
                            return Err(AuthError::Unavailable(why).into());
                        }
                        Unanswered::GiveUp(record, reply) => {
                            warn!(mo = id, from = %sender.masked(), error = %why, "auth core unavailable for too long; login rejected");
                            count_rejected("auth_core_unavailable");
                            report.detail(format!("auth core: {why}"));
                            (
                                record,
                                Some(reply),
                                MoOutcome::Rejected("auth_core_unavailable"),
                            )
                        }
                    },
                    Err(e) => return Err(e.into()),
                };
                (Some((token.challenge(), record)), reply, outcome)
            }
        };
        let reply = match reply {
            // START's answer is the one SMS an opted-out number gets; STOP's is the last.
            Some(r)
                if !matches!(r, Reply::Start | Reply::Stop)
                    && self.opt_outs.opted_out(&sender).await? =>
            {
                report.detail("reply suppressed: the number opted out".into());
                metrics::counter!("moauth_sms_suppressed_total", "reason" => "opted_out")
                    .increment(1);
                None
            }
            r => r,
        };
        let mut held_by = None;
        let countries = rules.reply_countries(&self.default_country_code);
        // Rendered once: the text is both what the limits count and what is queued.
        let reply = match reply {
            Some(r) => {
                let text = self.replies.load().render(&r);
                let segments = text::billed_segments(&text);
                let allowed = self
                    .number_limits()
                    .may_reply(&rules, countries, &sender, &r, segments, now);
                let allowed = match allowed {
                    Ok(()) => self
                        .sms_budget
                        .spend(SmsClass::of(&r), segments, &rules, now)
                        .await?
                        .then_some(())
                        .ok_or(Limit::SmsBudget),
                    refused => refused,
                };
                if let Err(limit) = allowed {
                    held_by = Some(limit);
                    limit_hit(limit);
                }
                allowed.ok().map(|()| (r, text))
            }
            None => None,
        };
        report.outcome(outcome, reply.as_ref().map(|(r, _)| r), held_by);
        let replies: Vec<Outbound> = reply
            .into_iter()
            .map(|(_, text)| mo.reply_route().sms(sender.clone(), text, self.clock.now()))
            .collect();
        let (login, event) = self.hooks.route(record).await?;
        // An answer an earlier pass of this MO got is forgotten too, whatever it led to now.
        // A session left to this commit means the core found no answer kept for the MO.
        if session.is_none() {
            batch.settle.push(id);
        }
        batch.push(Outcome::Decided {
            mo: id,
            login,
            session,
            replies,
            event,
        });
        batch.reports.push(report);
        if let Some(created) = completed {
            batch.completed.push(Completed {
                sender,
                created,
                received_at: mo.received_at,
                digest,
                now,
            });
        }
        Ok(())
    }

    /// Carries out a command texted by `sender`; returns the reply it earned. An error leaves
    /// the MO in the inbox, to be tried again (each step may be repeated).
    async fn command(
        &self,
        command: Command,
        sender: &Msisdn,
        rules: &LimitsConfig,
        now: UnixSecs,
    ) -> Result<Option<Reply>, PipelineError> {
        metrics::counter!("moauth_sms_commands_total", "command" => command_name(command))
            .increment(1);
        let unsupported = |what| {
            info!(from = %sender.masked(), "{what} is not done by this auth core; answered with HELP");
            Some(Reply::Help)
        };
        Ok(match command {
            Command::Help => Some(Reply::Help),
            Command::Stop | Command::Start => {
                let stop = command == Command::Stop;
                let changed = self.opt_outs.set_opt_out(sender, stop, now).await?;
                info!(from = %sender.masked(), opted_out = stop, changed, "opt-out");
                Some(if stop { Reply::Stop } else { Reply::Start })
            }
            Command::Password => {
                // A password replaced but never texted would lock its owner out: only when
                // the new one can be sent.
                if self.opt_outs.opted_out(sender).await? {
                    info!(from = %sender.masked(), "PASSWORD from an opted-out number; nothing done");
                    return Ok(None);
                }
                if !self.number_limits().reply_allowed(rules, sender, now) {
                    info!(from = %sender.masked(), "PASSWORD over the reply limit; nothing done");
                    limit_hit(Limit::ErrorSmsPerNumber);
                    return Ok(None);
                }
                if !self
                    .sms_budget
                    .has_room(SmsClass::Credentials, rules, now)
                    .await?
                {
                    info!(from = %sender.masked(), "PASSWORD with the SMS budget spent; nothing done");
                    limit_hit(Limit::SmsBudget);
                    return Ok(None);
                }
                match self.auth.reset_password(sender).await? {
                    ByNumber::Done(credentials) => {
                        info!(from = %sender.masked(), "password replaced");
                        Some(Reply::NewPassword(credentials))
                    }
                    ByNumber::NoAccount => Some(Reply::NoAccount),
                    ByNumber::NotSupported => unsupported("PASSWORD"),
                }
            }
            Command::Logout => match self.auth.log_out(sender).await? {
                ByNumber::Done(()) => {
                    info!(from = %sender.masked(), "LOGOUT: every session ended");
                    Some(Reply::LoggedOut)
                }
                ByNumber::NoAccount => Some(Reply::NoAccount),
                ByNumber::NotSupported => unsupported("LOGOUT"),
            },
        })
    }

    /// Sets an MO that cannot be read aside for an operator, out of the pipeline's way.
    fn malformed(
        &self,
        id: u64,
        mo: &MoMessage,
        mut report: MoReport,
        reason: String,
        batch: &mut Batch,
    ) {
        report.detail(reason.clone());
        report.outcome(MoOutcome::Malformed, None, None);
        batch.reports.push(report);
        let rejected = RejectedMo {
            mo: mo.clone(),
            reason,
        };
        batch.push(Outcome::Rejected { mo: id, rejected });
        count_rejected("malformed");
    }

    /// The limit, if any, that refuses this MO: the deny list or the sender's MO bucket, or
    /// for a login of a number the auth core does not know, its prefix's new-account bucket.
    /// Otherwise whether the login may create an account: not past the prefix's limit, where
    /// a core that cannot say beforehand whether it knows the number (a remote one) is asked
    /// to log it in only if it does, so its known users are not locked out.
    async fn limit(
        &self,
        rules: &LimitsConfig,
        mo_id: u64,
        sender: &Msisdn,
        decision: &Decision,
        now: UnixSecs,
    ) -> Result<Result<bool, Limit>, PipelineError> {
        let may_create = {
            let mut limits = self.number_limits();
            if let Err(limit) = limits.admit_mo(rules, sender, mo_id, now) {
                limit_hit(limit);
                return Ok(Err(limit));
            }
            limits.may_create_account(rules, sender, now)
        };
        if matches!(decision, Decision::LogIn(_))
            && let Err(limit) = may_create
            && self.auth.knows(sender).await? == Some(false)
        {
            limit_hit(limit);
            return Ok(Err(limit));
        }
        Ok(Ok(may_create.is_ok()))
    }

    fn number_limits(&self) -> MutexGuard<'_, NumberLimits> {
        self.number_limits.lock().expect("number limits lock")
    }

    /// Removes what has outlived its purpose: finished logins, expired sessions of the
    /// embedded auth core, parts whose siblings never came, digests of MOs too old to be
    /// redelivered, week-old rejected MOs.
    async fn sweep(&self, logins_sweep: &mut Option<JoinHandle<()>>) {
        let now = self.clock.now();
        self.number_limits().sweep(now);
        self.arrivals
            .forget_older(ARRIVALS_KEPT, std::time::Instant::now());
        // A million live logins take seconds to walk: beside the pipeline instead of in its
        // way (a record the pipeline rewrites meanwhile stays), and never two at once.
        if logins_sweep.as_ref().is_none_or(JoinHandle::is_finished) {
            let store = self.store.clone();
            *logins_sweep = Some(tokio::spawn(async move {
                match store.sweep_logins(now).await {
                    Ok(swept) => debug!(logins = swept, "swept"),
                    Err(e) => warn!(error = %e, "logins sweep failed"),
                }
            }));
        }
        match self.auth.sweep(now).await {
            Ok(sessions) => debug!(sessions, "swept"),
            Err(e) => warn!(error = %e, "sessions sweep failed"),
        }
        let due = SweepDue {
            now,
            parts_before: now.saturating_sub(self.inbound.concat_timeout_secs),
            seen_before: now.saturating_sub(self.inbound.redelivery_window_secs),
            rejected_before: now.saturating_sub(REJECTED_KEPT_SECS),
            sent_before: now.saturating_sub(SENT_KEPT_SECS),
        };
        match self.store.sweep_leftovers(due).await {
            Ok(swept) => {
                if swept.parts > 0 {
                    warn!(
                        parts = swept.parts,
                        "parts of concatenated SMS expired before the rest arrived; dropped"
                    );
                }
                debug!(
                    seen = swept.seen,
                    rejected = swept.rejected,
                    sent = swept.sent,
                    "swept"
                );
            }
            Err(e) => warn!(error = %e, "sweep failed"),
        }
    }
}

/// The text of a complete MO; a UDH without concatenation (ports, language shifts) is skipped.
fn decode_text(mo: &MoMessage) -> Result<String, String> {
    let data = if mo.esm_class & concat::ESM_UDHI != 0 {
        udh::split(&mo.user_data).map_err(|e| e.to_string())?.1
    } else {
        &mo.user_data[..]
    };
    text::decode(mo.data_coding, data).map_err(|e| e.to_string())
}

fn count_rejected(reason: &'static str) {
    metrics::counter!("moauth_mo_rejected_total", "reason" => reason).increment(1);
}

fn limit_hit(limit: Limit) {
    metrics::counter!("moauth_limit_hits_total", "limit" => limit.as_str()).increment(1);
}

/// The `command` label of `moauth_sms_commands_total`.
pub fn command_name(command: Command) -> &'static str {
    match command {
        Command::Help => "help",
        Command::Stop => "stop",
        Command::Start => "start",
        Command::Password => "password",
        Command::Logout => "logout",
    }
}
