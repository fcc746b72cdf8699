//! `POST /learn/tick`: order outcomes per (profile, task type) → a versioned
//! routing-policy document and a `POLICY_UPDATED` event.
//!
//! Every tick recomputes from all order events up to the ledger head it read
//! first (`through_seq`) instead of merging into the previous document: the
//! result then depends on the events alone, so the same ledger always gives
//! the same stats and routing (only `generated_at` and the version differ).
//! Reads go by event type (indexed) in bounded pages, and only per-order
//! facts are kept in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use garrison_contracts::ironclaw::{EventType, NewEvent};
use garrison_ledger::{Ledger, Query, Record, format_ts};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::LearningError;
use crate::Store;

/// Subdirectory of the data dir holding the policy documents.
pub const LEARNING_DIR: &str = "learning";
/// The copy of the newest policy document.
pub const LATEST_FILE: &str = "policy-latest.json";
/// Settled (completed or failed) orders a profile needs on a task type before
/// it may be preferred for it: fewer is noise, not evidence.
pub const MIN_SETTLED: u64 = 3;
const PAGE: i64 = 5000;
/// Profile or task type of an order whose ORDER_CREATED does not name one.
const UNKNOWN: &str = "unknown";
/// The task type the CO writes when a plan order has none.
const DEFAULT_TASK_TYPE: &str = "task";

/// Serialises ticks in this process so two concurrent ticks cannot both take
/// the same version number.
static TICK: Mutex<()> = Mutex::const_new(());

/// Milliseconds from an order's first ORDER_STARTED to its end, nearest-rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Outcomes of one profile on one task type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileStats {
    pub profile: String,
    pub task_type: String,
    /// Orders created with this profile and type.
    pub orders: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// `completed / (completed + failed)`, 4 decimals; `None` until one settled.
    /// Orders still in flight and cancelled ones say nothing about quality.
    pub success_rate: Option<f64>,
    /// Over completed and failed orders that were started; `None` without samples.
    pub latency_ms: Option<Latency>,
    /// ORDER_REISSUED events (lease expiries, retried failures).
    pub retries: u64,
    /// Orders reissued at least once.
    pub retried_orders: u64,
    /// Runs containing such an order on which a user correction was logged.
    pub corrected_runs: u64,
}

impl ProfileStats {
    fn settled(&self) -> u64 {
        self.completed + self.failed
    }
}

/// The routing recommendation for one task type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub preferred_profile: Option<String>,
    pub reason: String,
}

/// User correction signals: RUN_UPDATED events whose `metadata.correction`
/// is set (the operator or user said the run's output needed fixing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corrections {
    pub events: u64,
    pub runs: u64,
}

/// One routing-policy document (`policy-v<N>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDoc {
    pub policy_version: u64,
    pub generated_at: String,
    /// The ledger head the stats were computed through.
    pub through_seq: i64,
    /// Orders with an ORDER_CREATED up to `through_seq`.
    pub orders_considered: u64,
    /// Sorted by (profile, task_type).
    pub stats: Vec<ProfileStats>,
    /// By task type.
    pub routing: BTreeMap<String, Route>,
    pub user_corrections: Corrections,
}

/// The path of policy version `version` under `data_dir`.
pub fn policy_file(data_dir: &Path, version: u64) -> PathBuf {
    data_dir
        .join(LEARNING_DIR)
        .join(format!("policy-v{version}.json"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Completed,
    Failed,
    Cancelled,
}

/// What the ledger says about one order.
#[derive(Debug, Default)]
struct OrderFacts {
    created: bool,
    run_id: Option<String>,
    profile: String,
    task_type: String,
    /// (seq, ts) of the first ORDER_STARTED.
    started: Option<(i64, jiff::Timestamp)>,
    /// The first terminal event: a terminal state may only re-assert itself.
    ended: Option<(i64, jiff::Timestamp, End)>,
    reissues: u64,
}

fn profile_name(payload: &Value) -> String {
    let name = match payload.get("profile") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(p) => p.get("name").and_then(Value::as_str),
        None => None,
    };
    name.map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN)
        .to_string()
}

fn task_type(payload: &Value) -> String {
    payload
        .get("type")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_TASK_TYPE)
        .to_string()
}

fn timestamp(rec: &Record) -> Option<jiff::Timestamp> {
    rec.ts.parse().ok()
}

/// Every event of `event_type` with `seq ≤ through`, page by page.
async fn for_each(
    ledger: &dyn Ledger,
    event_type: EventType,
    through: i64,
    mut f: impl FnMut(Record),
) -> Result<(), LearningError> {
    let mut after = 0;
    loop {
        let page = ledger
            .read(&Query {
                event_type: Some(event_type),
                after_seq: Some(after),
                limit: Some(PAGE),
                ..Query::default()
            })
            .await?;
        let full = page.len() >= usize::try_from(PAGE).unwrap_or(usize::MAX);
        for rec in page {
            if rec.seq > through {
                return Ok(());
            }
            after = rec.seq;
            f(rec);
        }
        if !full {
            return Ok(());
        }
    }
}

/// Per-order facts and per-run correction counts up to `through`.
async fn collect(
    ledger: &dyn Ledger,
    through: i64,
) -> Result<(HashMap<String, OrderFacts>, HashMap<String, u64>), LearningError> {
    let mut orders: HashMap<String, OrderFacts> = HashMap::new();
    for_each(ledger, EventType::OrderCreated, through, |rec| {
        let Some(id) = rec.order_id.clone() else {
            return;
        };
        let o = orders.entry(id).or_default();
        if !o.created {
            o.created = true;
            o.run_id = rec.run_id.clone();
            o.profile = profile_name(&rec.payload);
            o.task_type = task_type(&rec.payload);
        }
    })
    .await?;
    for_each(ledger, EventType::OrderStarted, through, |rec| {
        if let (Some(o), Some(ts)) = (
            rec.order_id.as_ref().and_then(|id| orders.get_mut(id)),
            timestamp(&rec),
        ) && o.started.is_none()
        {
            o.started = Some((rec.seq, ts));
        }
    })
    .await?;
    for (t, end) in [
        (EventType::OrderCompleted, End::Completed),
        (EventType::OrderFailed, End::Failed),
        (EventType::OrderCancelled, End::Cancelled),
    ] {
        for_each(ledger, t, through, |rec| {
            if let (Some(o), Some(ts)) = (
                rec.order_id.as_ref().and_then(|id| orders.get_mut(id)),
                timestamp(&rec),
            ) && o.ended.is_none_or(|(seq, _, _)| rec.seq < seq)
            {
                o.ended = Some((rec.seq, ts, end));
            }
        })
        .await?;
    }
    for_each(ledger, EventType::OrderReissued, through, |rec| {
        if let Some(o) = rec.order_id.as_ref().and_then(|id| orders.get_mut(id)) {
            o.reissues += 1;
        }
    })
    .await?;
    let mut corrections: HashMap<String, u64> = HashMap::new();
    for_each(ledger, EventType::RunUpdated, through, |rec| {
        let corrected = rec
            .payload
            .pointer("/metadata/correction")
            .is_some_and(|c| !c.is_null() && c != &Value::Bool(false));
        if corrected && let Some(run) = rec.run_id {
            *corrections.entry(run).or_default() += 1;
        }
    })
    .await?;
    // Events of orders whose ORDER_CREATED is missing (or past `through`)
    // name no profile; they are left out rather than guessed.
    orders.retain(|_, o| o.created);
    Ok((orders, corrections))
}

/// Nearest-rank percentile of sorted `v` (non-empty).
fn percentile(v: &[u64], pct: usize) -> u64 {
    let rank = (pct * v.len()).div_ceil(100).max(1);
    v.get(rank - 1).or(v.last()).copied().unwrap_or(0)
}

fn latency(mut v: Vec<u64>) -> Option<Latency> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(Latency {
        samples: v.len() as u64,
        p50: percentile(&v, 50),
        p90: percentile(&v, 90),
        p99: percentile(&v, 99),
        max: v.last().copied().unwrap_or(0),
    })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[derive(Default)]
struct Acc {
    orders: u64,
    completed: u64,
    failed: u64,
    cancelled: u64,
    latencies: Vec<u64>,
    retries: u64,
    retried_orders: u64,
    runs: BTreeSet<String>,
}

fn stats(
    orders: &HashMap<String, OrderFacts>,
    corrections: &HashMap<String, u64>,
) -> Vec<ProfileStats> {
    let mut groups: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for o in orders.values() {
        let a = groups
            .entry((o.profile.clone(), o.task_type.clone()))
            .or_default();
        a.orders += 1;
        a.retries += o.reissues;
        a.retried_orders += u64::from(o.reissues > 0);
        if let Some(run) = &o.run_id {
            a.runs.insert(run.clone());
        }
        let Some((end_seq, end_ts, end)) = o.ended else {
            continue;
        };
        match end {
            End::Completed => a.completed += 1,
            End::Failed => a.failed += 1,
            End::Cancelled => {
                a.cancelled += 1;
                continue;
            }
        }
        // From the first start, retries included, so a flaky profile is not
        // made to look fast by its last attempt.
        if let Some((start_seq, start_ts)) = o.started
            && start_seq < end_seq
        {
            let ms = end_ts.duration_since(start_ts).as_millis();
            a.latencies
                .push(u64::try_from(ms.max(0)).unwrap_or(u64::MAX));
        }
    }
    groups
        .into_iter()
        .map(|((profile, task_type), a)| {
            let settled = a.completed + a.failed;
            ProfileStats {
                profile,
                task_type,
                orders: a.orders,
                completed: a.completed,
                failed: a.failed,
                cancelled: a.cancelled,
                success_rate: (settled > 0).then(|| round4(a.completed as f64 / settled as f64)),
                latency_ms: latency(a.latencies),
                retries: a.retries,
                retried_orders: a.retried_orders,
                corrected_runs: a
                    .runs
                    .iter()
                    .filter(|r| corrections.contains_key(*r))
                    .count() as u64,
            }
        })
        .collect()
}

/// Better first: higher success rate (compared exactly as fractions), then
/// lower p50 latency (none is worst), then profile name for a stable order.
fn rank(a: &ProfileStats, b: &ProfileStats) -> std::cmp::Ordering {
    let rate = (u128::from(b.completed) * u128::from(a.settled()))
        .cmp(&(u128::from(a.completed) * u128::from(b.settled())));
    let p50 = |s: &ProfileStats| s.latency_ms.as_ref().map_or(u64::MAX, |l| l.p50);
    rate.then(p50(a).cmp(&p50(b)))
        .then_with(|| a.profile.cmp(&b.profile))
}

fn routing(stats: &[ProfileStats]) -> BTreeMap<String, Route> {
    let types: BTreeSet<&str> = stats.iter().map(|s| s.task_type.as_str()).collect();
    types
        .into_iter()
        .map(|t| {
            let mut eligible: Vec<&ProfileStats> = stats
                .iter()
                .filter(|s| s.task_type == t && s.settled() >= MIN_SETTLED)
                .collect();
            eligible.sort_by(|a, b| rank(a, b));
            let route = match eligible.first() {
                Some(best) => Route {
                    preferred_profile: Some(best.profile.clone()),
                    reason: format!(
                        "highest success rate {:.4} over {} settled orders (p50 {}) among {} eligible profile(s)",
                        best.success_rate.unwrap_or(0.0),
                        best.settled(),
                        best.latency_ms
                            .as_ref()
                            .map_or("n/a".to_string(), |l| format!("{} ms", l.p50)),
                        eligible.len()
                    ),
                },
                None => Route {
                    preferred_profile: None,
                    reason: format!(
                        "no profile has {MIN_SETTLED} settled orders of this task type yet"
                    ),
                },
            };
            (t.to_string(), route)
        })
        .collect()
}

/// The highest version among the stored documents (`policy-v<N>.json`, the
/// latest copy) and the ledger's POLICY_UPDATED events, so a lost latest
/// file or a wiped data dir never reuses a version.
async fn last_version(ledger: &dyn Ledger, dir: &Path) -> Result<u64, LearningError> {
    let mut v = 0;
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                let name = e.file_name();
                let n = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("policy-v"))
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(|n| n.parse::<u64>().ok());
                v = v.max(n.unwrap_or(0));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LearningError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    let latest = dir.join(LATEST_FILE);
    if let Ok(text) = std::fs::read_to_string(&latest) {
        match serde_json::from_str::<Value>(&text) {
            Ok(doc) => {
                v = v.max(
                    doc.get("policy_version")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                );
            }
            // It is rewritten below; the numbered files and the ledger still count.
            Err(e) => {
                tracing::warn!(path = %latest.display(), error = %e, "ignoring an unreadable policy document")
            }
        }
    }
    let last_event = ledger
        .read(&Query {
            event_type: Some(EventType::PolicyUpdated),
            limit: Some(1),
            newest_first: true,
            ..Query::default()
        })
        .await?;
    if let Some(n) = last_event
        .first()
        .and_then(|r| r.payload.get("policy_version"))
        .and_then(Value::as_u64)
    {
        v = v.max(n);
    }
    Ok(v)
}

/// Computes the routing policy from the ledger, writes
/// `<data_dir>/learning/policy-v<N>.json` and `policy-latest.json`
/// atomically (N = last version + 1), then appends POLICY_UPDATED.
pub async fn tick(ledger: &dyn Ledger, data_dir: &Path) -> Result<PolicyDoc, LearningError> {
    let _one_at_a_time = TICK.lock().await;
    let through = ledger.head().await?;
    let (orders, corrections) = collect(ledger, through).await?;
    let stats = stats(&orders, &corrections);
    let dir = data_dir.join(LEARNING_DIR);
    let version = last_version(ledger, &dir).await? + 1;
    let doc = PolicyDoc {
        policy_version: version,
        generated_at: format_ts(jiff::Timestamp::now()),
        through_seq: through,
        orders_considered: orders.len() as u64,
        routing: routing(&stats),
        stats,
        user_corrections: Corrections {
            events: corrections.values().sum(),
            runs: corrections.len() as u64,
        },
    };
    let path = policy_file(data_dir, version);
    let value = serde_json::to_value(&doc).map_err(|e| LearningError::Task(e.to_string()))?;
    let (file, written) = (path.clone(), value.clone());
    // The numbered file first: a crash before the latest copy is rewritten
    // still leaves the version taken (see `last_version`).
    tokio::task::spawn_blocking(move || {
        let store = Store::new(&dir);
        store.write_json(&file, &written)?;
        store.write_json(&dir.join(LATEST_FILE), &written)
    })
    .await
    .map_err(|e| LearningError::Task(e.to_string()))??;
    ledger
        .append(NewEvent::new(EventType::PolicyUpdated).payload(json!({
            "policy_version": version,
            "path": path.display().to_string(),
            "through_seq": through,
            "orders_considered": doc.orders_considered,
        })))
        .await?;
    tracing::info!(
        policy_version = version,
        through_seq = through,
        orders = doc.orders_considered,
        "routing policy updated"
    );
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), 5);
        assert_eq!(percentile(&v, 90), 9);
        assert_eq!(percentile(&v, 99), 10);
        assert_eq!(percentile(&[7], 50), 7);
    }

    #[test]
    fn profile_and_type_fall_back() {
        assert_eq!(profile_name(&json!({"profile": {"name": " llm "}})), "llm");
        assert_eq!(profile_name(&json!({"profile": "cmd"})), "cmd");
        assert_eq!(profile_name(&json!({})), UNKNOWN);
        assert_eq!(task_type(&json!({"type": "review"})), "review");
        assert_eq!(task_type(&json!({"type": ""})), DEFAULT_TASK_TYPE);
    }
}
