//! Garrison's own runs as Appleseed evidence: `RUN_CREATED` becomes a
//! `session_started` envelope, `RUN_COMPLETED`/`RUN_FAILED`/`RUN_CANCELLED` a
//! `session_feedback` envelope, ingested into `<data-dir>/appleseed` by the
//! same [`Appleseed::ingest`] external runtimes go through.
//!
//! Envelope and event ids are derived from the ledger event id, so handling
//! an event twice (a replay after a crash) is a skipped duplicate, never a
//! second record. The followed position is persisted in
//! `appleseed/garrison-feed.pos` so a restart does not re-read the whole
//! ledger; it is saved after each handled run event and every
//! [`SAVE_EVERY`] other events, which the idempotent ids make safe.
//!
//! Feedback score: the share of the run's orders that were delivered
//! (completed, and integrated — gates passed — when the order has a theater);
//! a failed run gets half of that. A run without orders scores 1 when
//! complete, 0 when failed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use garrison_contracts::appleseed::{CONTRACT_NAME, CONTRACT_VERSION, EVENT_SCHEMA_VERSION};
use garrison_contracts::ironclaw::{EventType, OrderStatus};
use garrison_ledger::{Ledger, OrderSnapshot, Query, Record, order_counts, tail};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::LearningError;
use crate::{Appleseed, Store, derived_id};

/// The position file, in the Appleseed state dir.
pub const POSITION_FILE: &str = "garrison-feed.pos";
/// `source` of the envelopes this feed writes.
pub const SOURCE: &str = "garrison";
/// Save the position at least this often while skipping unrelated events.
pub const SAVE_EVERY: i64 = 1000;
/// Pause before retrying after the ledger or the state dir failed.
const RETRY: Duration = Duration::from_secs(1);

/// The envelope id for ledger event `event_id`.
pub fn envelope_id(event_id: &str) -> String {
    derived_id(&["garrison-feed", "envelope", event_id])
}

/// The Appleseed event id for ledger event `event_id`.
pub fn event_id(event_id: &str) -> String {
    derived_id(&["garrison-feed", "event", event_id])
}

/// The Appleseed state dir of `data_dir`.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("appleseed")
}

/// The last ledger `seq` the feed handled (0: none, or an unreadable file —
/// replaying from the start only produces duplicates).
pub fn read_position(data_dir: &Path) -> i64 {
    let path = state_dir(data_dir).join(POSITION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(path = %path.display(), "unreadable feed position; replaying from the start");
            0
        }),
        Err(_) => 0,
    }
}

async fn save_position(data_dir: &Path, seq: i64) -> Result<(), LearningError> {
    let dir = state_dir(data_dir);
    tokio::task::spawn_blocking(move || {
        Store::new(&dir).write_text(&dir.join(POSITION_FILE), &format!("{seq}\n"))
    })
    .await
    .map_err(|e| LearningError::Task(e.to_string()))??;
    Ok(())
}

/// Resolves once shutdown starts (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|down| *down).await;
}

/// The feed as a background service: `Feed::new(ledger, data_dir).start(signal)`.
pub struct Feed {
    ledger: Arc<dyn Ledger>,
    data_dir: PathBuf,
}

impl Feed {
    pub fn new(ledger: Arc<dyn Ledger>, data_dir: PathBuf) -> Self {
        Feed { ledger, data_dir }
    }

    /// Runs [`run`] until the signal; drained to its end at shutdown so its
    /// position is saved before the ledger closes.
    pub fn start(self, signal: garrison_lifecycle::Signal) -> garrison_lifecycle::Handle {
        garrison_lifecycle::Handle::spawn(
            "appleseed feed",
            garrison_lifecycle::Drain::Finish,
            run(self.ledger, self.data_dir, signal),
        )
    }
}

/// Follows the ledger from the saved position until `shutdown` turns true
/// (or its sender is dropped), ingesting an envelope for every run event.
/// A failing ledger or state dir is retried from the last handled event.
pub async fn run(
    ledger: Arc<dyn Ledger>,
    data_dir: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LearningError> {
    let mut pos = read_position(&data_dir);
    let mut saved = pos;
    tracing::info!(position = pos, "appleseed feed started");
    'follow: loop {
        let mut follow = pin!(tail::follow(ledger.clone(), pos));
        loop {
            let rec = tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break 'follow,
                item = follow.next() => match item {
                    Some(Ok(rec)) => rec,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "appleseed feed cannot follow the ledger; retrying");
                        break;
                    }
                    None => break 'follow,
                },
            };
            match handle(ledger.as_ref(), &data_dir, &rec).await {
                Ok(handled) => {
                    pos = rec.seq;
                    if handled || pos - saved >= SAVE_EVERY {
                        match save_position(&data_dir, pos).await {
                            Ok(()) => saved = pos,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot save the appleseed feed position")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, seq = rec.seq, "appleseed feed failed on an event; retrying");
                    break;
                }
            }
        }
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break 'follow,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
    if pos != saved {
        save_position(&data_dir, pos).await?;
    }
    tracing::info!(position = pos, "appleseed feed stopped");
    Ok(())
}

/// Ingests the envelope for `rec` if it is a run event; true when it was one.
async fn handle(ledger: &dyn Ledger, data_dir: &Path, rec: &Record) -> Result<bool, LearningError> {
    let envelope = match rec.event_type {
        EventType::RunCreated => started(rec),
        EventType::RunCompleted | EventType::RunFailed | EventType::RunCancelled => {
            feedback(ledger, rec).await?
        }
        _ => None,
    };
    let Some(envelope) = envelope else {
        return Ok(false);
    };
    let dir = state_dir(data_dir);
    let outcome = tokio::task::spawn_blocking(move || Appleseed::open(dir).ingest(&envelope))
        .await
        .map_err(|e| LearningError::Task(e.to_string()))?;
    match outcome {
        Ok(o) => {
            for w in o.warnings {
                tracing::warn!(warning = %w, "appleseed state");
            }
            Ok(true)
        }
        // A refused envelope will be refused again: log it and move on
        // instead of stalling the feed on it.
        Err(e) if e.is_rejection() => {
            tracing::error!(error = %e, event_id = %rec.event_id, "appleseed refused a garrison run envelope");
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The envelope for `rec`, keys in the contract's order; `fields` follow
/// the shared ones.
fn envelope(rec: &Record, kind: &str, run_id: &str, fields: Map<String, Value>) -> Value {
    let mut ev = Map::new();
    ev.insert("schema_version".into(), json!(EVENT_SCHEMA_VERSION));
    ev.insert("event_id".into(), json!(event_id(&rec.event_id)));
    ev.insert("event_kind".into(), json!(kind));
    ev.insert("occurred_at".into(), json!(rec.ts));
    ev.insert("session_id".into(), json!(run_id));
    ev.extend(fields);
    json!({
        "contract_name": CONTRACT_NAME,
        "contract_version": CONTRACT_VERSION,
        "envelope_id": envelope_id(&rec.event_id),
        "source": SOURCE,
        "metadata": {
            "garrison_id": rec.garrison_id,
            "theater_id": rec.theater_id,
            "ledger_event_id": rec.event_id,
            "ledger_event_type": rec.event_type.as_str(),
            "ledger_seq": rec.seq,
        },
        "event": ev,
    })
}

fn started(rec: &Record) -> Option<Value> {
    let run_id = non_empty(rec.run_id.as_deref())?;
    let task = non_empty(rec.payload.get("objective").and_then(Value::as_str))
        .unwrap_or_else(|| format!("run {run_id}"));
    let mut ev = Map::new();
    ev.insert("task".into(), json!(task));
    let mut meta = Map::new();
    for key in ["theater_id", "user_id"] {
        if let Some(v) = rec.payload.get(key).filter(|v| !v.is_null()) {
            meta.insert(key.into(), v.clone());
        }
    }
    ev.insert("metadata".into(), Value::Object(meta));
    Some(envelope(rec, "session_started", &run_id, ev))
}

/// Completed, and integrated where there is a theater to integrate into.
fn delivered(o: &OrderSnapshot) -> bool {
    o.status == OrderStatus::Completed
        && (o.theater_id.as_deref().is_none_or(str::is_empty)
            || o.integration == Some(EventType::Integrated))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

async fn feedback(ledger: &dyn Ledger, rec: &Record) -> Result<Option<Value>, LearningError> {
    let Some(run_id) = non_empty(rec.run_id.as_deref()) else {
        return Ok(None);
    };
    let objective = ledger
        .run_snapshot(&run_id)
        .await?
        .and_then(|r| non_empty(r.objective.as_deref()));
    let task = objective.unwrap_or_else(|| format!("run {run_id}"));
    let orders = ledger.run_orders(&run_id).await?;
    // Profiles and task types are only on ORDER_CREATED.
    let created = ledger.read(&Query::orders_created_in(&run_id)).await?;
    let profiles: BTreeSet<String> = created
        .iter()
        .filter_map(|r| match r.payload.get("profile") {
            Some(Value::String(s)) => non_empty(Some(s)),
            Some(p) => non_empty(p.get("name").and_then(Value::as_str)),
            None => None,
        })
        .collect();
    let types: BTreeSet<String> = created
        .iter()
        .filter_map(|r| non_empty(r.payload.get("type").and_then(Value::as_str)))
        .collect();

    let total = orders.len();
    let good = orders.iter().filter(|o| delivered(o)).count();
    let complete = rec.event_type == EventType::RunCompleted;
    let cancelled = rec.event_type == EventType::RunCancelled;
    let share = if total == 0 {
        if complete { 1.0 } else { 0.0 }
    } else {
        good as f64 / total as f64
    };
    let score = round4(if complete { share } else { share * 0.5 });
    let status = match (complete, cancelled, good) {
        (true, _, _) => "success",
        (false, true, _) => "cancelled",
        (false, false, 0) => "failure",
        (false, false, _) => "partial",
    };
    let reason = non_empty(rec.payload.get("reason").and_then(Value::as_str));
    let ended = if cancelled { "cancelled" } else { "failed" };
    let comment = match &reason {
        Some(r) => format!("run {ended}: {r}"),
        None if complete => format!("run complete: {good}/{total} orders delivered"),
        None => format!("run {ended}: {good}/{total} orders delivered"),
    };
    let retried = orders.iter().filter(|o| o.attempt > 1).count();

    let mut ev = Map::new();
    ev.insert("task".into(), json!(task));
    ev.insert("status".into(), json!(status));
    ev.insert("score".into(), json!(score));
    ev.insert("comment".into(), json!(comment));
    // Profiles play the part of skills: the evolution pipeline then weighs
    // each profile's outcomes per task type.
    ev.insert("selected_skill_ids".into(), json!(profiles));
    ev.insert(
        "metadata".into(),
        json!({
            "outcome": if complete { "COMPLETE" } else if cancelled { "CANCELLED" } else { "FAILED" },
            "reason": reason,
            "orders": order_counts(&orders),
            "orders_total": total,
            "orders_delivered": good,
            "orders_retried": retried,
            "order_types": types,
        }),
    );
    Ok(Some(envelope(rec, "session_feedback", &run_id, ev)))
}
