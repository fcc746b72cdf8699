//! The outbox: turns source events into signed deliveries and drives each
//! one through [`delivery`](super::delivery)'s state machine.
//!
//! All delivery state is in the ledger. A `sending` step is appended with
//! compare-and-append on the delivery stream before every attempt, so two
//! outboxes over one ledger never both send the same attempt: the loser gets
//! `ConcurrencyConflict` and waits for the winner's steps to arrive.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use garrison_contracts::milestone::MilestoneEvent;
use garrison_contracts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use garrison_ledger::{Ledger, LedgerError, NewEvent, Query, Record, format_ts, tail};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::delivery::{
    self, DELIVERY_TYPE, DeliveryState, DeliveryStep, Next, Outcome, Policy, Progress,
};
use super::milestone_for::{SOURCE_TYPES, idempotency_key, ingest_body, is_source, milestone_for};
use garrison_client::ServerUrl;

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight attempts to record what happened.
const STOP_GRACE: Duration = Duration::from_secs(5);
const PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("milestone target `{url}`: {reason}")]
    InvalidTarget { url: String, reason: String },
    #[error("the outbox cannot read the ledger: {0}")]
    Ledger(#[from] LedgerError),
}

/// One ingest endpoint and the secret it checks signatures with.
#[derive(Clone)]
pub struct Target {
    url: String,
    server: ServerUrl,
    secret: Vec<u8>,
}

impl Target {
    /// An `http://` or `https://` ingest URL and a non-empty secret.
    pub fn new(url: &str, secret: Vec<u8>) -> Result<Target, OutboxError> {
        let invalid = |reason: String| OutboxError::InvalidTarget {
            url: url.to_string(),
            reason,
        };
        let server = ServerUrl::parse(url).map_err(|e| invalid(e.to_string()))?;
        if secret.is_empty() {
            return Err(invalid("no signing secret".into()));
        }
        Ok(Target {
            url: url.to_string(),
            server,
            secret,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("secret", &"<set>")
            .finish()
    }
}

/// What the outbox delivers where, and how hard it tries.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub targets: Vec<Target>,
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles each attempt, ±50% jitter.
    pub backoff: Duration,
    /// Longest one attempt may take.
    pub send_timeout: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            targets: Vec::new(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }
}

impl OutboxConfig {
    fn policy(&self) -> Policy {
        Policy {
            max_attempts: self.max_attempts.max(1),
            backoff: self.backoff,
            // A live sender appends its answer within the send timeout.
            lease: self.send_timeout.saturating_mul(2),
        }
    }
}

/// One delivery the outbox tracks.
struct Entry {
    source_event_id: String,
    target: usize,
    milestone: Arc<MilestoneEvent>,
    progress: Progress,
    next: Next,
    due: Option<Instant>,
    in_flight: bool,
    /// After losing a compare-and-append: idle until the ledger view reaches this version.
    wait_for_version: i64,
}

/// What an attempt task reports back.
struct Report {
    stream: String,
    appended: Vec<Record>,
    lost_to: Option<i64>,
    /// The ledger refused a step for another reason: pause before trying again.
    storage_error: bool,
}

/// The outbox as a background service: `OutboxService::new(ledger,
/// options).start(signal)`.
pub struct OutboxService {
    ledger: Arc<dyn Ledger>,
    config: OutboxConfig,
}

impl OutboxService {
    pub fn new(ledger: Arc<dyn Ledger>, config: OutboxConfig) -> Self {
        OutboxService { ledger, config }
    }

    /// Runs [`run`] until the signal; drained to its end at shutdown so its
    /// last steps are appended before the ledger closes.
    pub fn start(self, signal: garrison_lifecycle::Signal) -> garrison_lifecycle::Handle {
        garrison_lifecycle::Handle::spawn(
            "milestone outbox",
            garrison_lifecycle::Drain::Finish,
            run(self.ledger, self.config, signal),
        )
    }
}

/// Runs the outbox until `shutdown` turns true (or its sender is dropped).
/// Reads every source event and delivery step, resumes what is not final,
/// then follows the ledger from the head it read.
pub async fn run(
    ledger: Arc<dyn Ledger>,
    config: OutboxConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), OutboxError> {
    let config = Arc::new(config);
    let mut outbox = Outbox {
        ledger: ledger.clone(),
        config: config.clone(),
        policy: config.policy(),
        entries: HashMap::new(),
    };
    let head = ledger.head().await?;
    let mut backlog = Vec::new();
    for t in SOURCE_TYPES.iter().copied().chain([DELIVERY_TYPE]) {
        backlog.extend(read_all(ledger.as_ref(), t).await?);
    }
    backlog.sort_by_key(|r| r.seq);
    for rec in &backlog {
        outbox.apply(rec);
    }
    tracing::info!(
        deliveries = outbox.entries.len(),
        pending = outbox.entries.values().filter(|e| e.due.is_some()).count(),
        "milestone outbox started"
    );

    let mut follow = pin!(tail::follow(ledger, head));
    let mut tasks: JoinSet<Report> = JoinSet::new();
    // Attempt tasks get their own receiver; `shutdown` is borrowed by the select.
    let for_tasks = shutdown.clone();
    loop {
        let due = outbox
            .entries
            .values()
            .filter(|e| !e.in_flight)
            .filter_map(|e| e.due)
            .min();
        let wake = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(done) = tasks.join_next() => match done {
                Ok(report) => outbox.finished(report),
                Err(e) => tracing::error!(error = %e, "a milestone delivery task failed"),
            },
            item = follow.next() => match item {
                Some(Ok(rec)) => outbox.apply(&rec),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "outbox cannot follow the ledger; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => break,
            },
            () = wake => outbox.launch_due(&mut tasks, &for_tasks),
        }
    }
    // In-flight attempts see the same signal and record a `retry` before ending.
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("outbox stopped with attempts still in flight");
    }
    tracing::info!("milestone outbox stopped");
    Ok(())
}

/// Resolves once shutdown starts (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here.
    let _ = rx.wait_for(|down| *down).await;
}

async fn read_all(
    ledger: &dyn Ledger,
    event_type: garrison_contracts::ironclaw::EventType,
) -> Result<Vec<Record>, LedgerError> {
    let mut out: Vec<Record> = Vec::new();
    loop {
        let page = ledger
            .read(&Query {
                event_type: Some(event_type),
                after_seq: out.last().map(|r| r.seq),
                limit: Some(PAGE),
                ..Query::default()
            })
            .await?;
        let done = page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

struct Outbox {
    ledger: Arc<dyn Ledger>,
    config: Arc<OutboxConfig>,
    policy: Policy,
    entries: HashMap<String, Entry>,
}

impl Outbox {
    /// Folds one ledger event into the tracked deliveries. Idempotent, so the
    /// backlog, the follow stream and task reports may overlap.
    fn apply(&mut self, rec: &Record) {
        if is_source(rec) {
            let Some(milestone) = milestone_for(rec).map(Arc::new) else {
                return;
            };
            for (i, t) in self.config.targets.iter().enumerate() {
                let stream = delivery::stream_name(&rec.event_id, &t.url);
                if self.entries.contains_key(&stream) {
                    continue;
                }
                let mut entry = Entry {
                    source_event_id: rec.event_id.clone(),
                    target: i,
                    milestone: milestone.clone(),
                    progress: Progress::default(),
                    next: Next::Done,
                    due: None,
                    in_flight: false,
                    wait_for_version: 0,
                };
                schedule(&mut entry, &self.policy);
                self.entries.insert(stream, entry);
            }
            return;
        }
        let Some(step) = DeliveryStep::from_record(rec) else {
            return;
        };
        // Deliveries to targets no longer configured are left as they are.
        let Some(entry) = self.entries.get_mut(&rec.stream) else {
            return;
        };
        if rec.stream_version <= entry.progress.version {
            return;
        }
        entry.progress = Progress {
            version: rec.stream_version,
            last: Some(step),
            updated_at: rec.ts.parse().ok(),
        };
        schedule(entry, &self.policy);
    }

    fn finished(&mut self, report: Report) {
        for rec in &report.appended {
            self.apply(rec);
        }
        if let Some(entry) = self.entries.get_mut(&report.stream) {
            entry.in_flight = false;
            if let Some(actual) = report.lost_to {
                entry.wait_for_version = actual;
            }
            schedule(entry, &self.policy);
            if report.storage_error {
                entry.due = entry.due.map(|_| Instant::now() + Duration::from_secs(1));
            }
        }
    }

    fn launch_due(&mut self, tasks: &mut JoinSet<Report>, shutdown: &watch::Receiver<bool>) {
        let now = Instant::now();
        for (stream, entry) in &mut self.entries {
            if entry.in_flight || entry.due.is_none_or(|d| d > now) {
                continue;
            }
            let Some(target) = self.config.targets.get(entry.target).cloned() else {
                continue;
            };
            let job = Job {
                ledger: self.ledger.clone(),
                stream: stream.clone(),
                source_event_id: entry.source_event_id.clone(),
                target,
                milestone: entry.milestone.clone(),
                next: entry.next.clone(),
                version: entry.progress.version,
                max_attempts: self.policy.max_attempts,
                send_timeout: self.config.send_timeout,
            };
            entry.in_flight = true;
            tasks.spawn(job.run(shutdown.clone()));
        }
    }
}

/// Sets `entry.next` and `entry.due` from its progress.
fn schedule(entry: &mut Entry, policy: &Policy) {
    let jitter = rand::rng().random_range(-0.5..=0.5);
    entry.next = delivery::next(&entry.progress, policy, jitter);
    entry.due = match &entry.next {
        Next::Done => None,
        _ if entry.progress.version < entry.wait_for_version => None,
        Next::GiveUp { .. } => Some(Instant::now()),
        Next::Send { not_before, .. } => Some(instant_at(*not_before)),
    };
}

/// The monotonic instant of a wall-clock time (now when past or unknown).
fn instant_at(at: Option<jiff::Timestamp>) -> Instant {
    let now = Instant::now();
    let Some(at) = at else { return now };
    let wait = at.duration_since(jiff::Timestamp::now());
    match Duration::try_from(wait) {
        Ok(d) => now + d,
        Err(_) => now,
    }
}

/// One attempt (or the final `dead-letter`) of one delivery.
struct Job {
    ledger: Arc<dyn Ledger>,
    stream: String,
    source_event_id: String,
    target: Target,
    milestone: Arc<MilestoneEvent>,
    next: Next,
    version: i64,
    max_attempts: u32,
    send_timeout: Duration,
}

impl Job {
    async fn run(self, shutdown: watch::Receiver<bool>) -> Report {
        let mut report = Report {
            stream: self.stream.clone(),
            appended: Vec::new(),
            lost_to: None,
            storage_error: false,
        };
        let attempt = match self.next {
            Next::Send { attempt, .. } => attempt,
            Next::GiveUp { attempt } => {
                let outcome = Outcome {
                    state: DeliveryState::DeadLetter,
                    http_status: None,
                    reason: Some(format!("gave up after {attempt} attempts")),
                };
                self.record(&mut report, attempt, outcome, self.version)
                    .await;
                return report;
            }
            Next::Done => return report,
        };
        let sending = Outcome {
            state: DeliveryState::Sending,
            http_status: None,
            reason: None,
        };
        if !self
            .record(&mut report, attempt, sending, self.version)
            .await
        {
            return report;
        }
        // Interrupted by shutdown: the stream keeps ending in `sending`, which
        // the next start treats like a crash mid-send and sends again.
        let Some(outcome) = self.send(shutdown).await else {
            return report;
        };
        let outcome = delivery::finish(outcome, attempt, self.max_attempts);
        self.record(&mut report, attempt, outcome, self.version + 1)
            .await;
        report
    }

    /// POSTs the signed milestone; `None` when shutdown interrupts it.
    async fn send(&self, mut shutdown: watch::Receiver<bool>) -> Option<Outcome> {
        let sent_at = format_ts(jiff::Timestamp::now());
        let body = ingest_body(&self.source_event_id, &self.milestone, &sent_at);
        let answer = match serde_json::to_vec(&body) {
            Ok(bytes) => match sign(&self.target.secret, &bytes) {
                Ok(signature) => tokio::select! {
                    r = self.post(&bytes, &signature, &sent_at) => r,
                    () = stopped(&mut shutdown) => return None,
                },
                Err(e) => Err(format!("cannot sign the milestone: {e}")),
            },
            Err(e) => Err(format!("cannot encode the milestone: {e}")),
        };
        Some(match &answer {
            Ok((status, body)) => delivery::classify(Ok((*status, body.as_slice()))),
            Err(reason) => delivery::classify(Err(reason.clone())),
        })
    }

    async fn post(
        &self,
        body: &[u8],
        signature: &str,
        stamp: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let headers = [
            ("content-type", "application/json"),
            (SIGNATURE_HEADER, signature),
            (TIMESTAMP_HEADER, stamp),
        ];
        // ServerUrl drops a trailing slash; keep the exact URL configured.
        let path = if self.target.url.ends_with('/') {
            "/"
        } else {
            ""
        };
        match tokio::time::timeout(
            self.send_timeout,
            self.target.server.post(path, &headers, body),
        )
        .await
        {
            Ok(Ok(r)) => Ok((r.status, r.body)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.send_timeout.as_millis()
            )),
        }
    }

    /// Appends one step at `expected` version; false when it was not stored.
    async fn record(
        &self,
        report: &mut Report,
        attempt: u32,
        outcome: Outcome,
        expected: i64,
    ) -> bool {
        let step = DeliveryStep {
            source_event_id: self.source_event_id.clone(),
            target: self.target.url.clone(),
            attempt,
            state: outcome.state,
            http_status: outcome.http_status,
            reason: outcome.reason,
            idempotency_key: idempotency_key(&self.source_event_id),
            milestone_id: self.milestone.milestone_id.clone(),
        };
        let payload = match serde_json::to_value(&step) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a delivery step");
                return false;
            }
        };
        let event = NewEvent::new(DELIVERY_TYPE)
            .in_stream(self.stream.clone())
            .expect_version(expected)
            .payload(payload);
        match self.ledger.append(event).await {
            Ok(a) => {
                report.appended.push(a.record);
                true
            }
            Err(LedgerError::ConcurrencyConflict { actual, .. }) => {
                // Another outbox moved this delivery on; its steps will arrive.
                report.lost_to = Some(actual);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, stream = %self.stream, "cannot record a delivery step");
                report.storage_error = true;
                false
            }
        }
    }
}
