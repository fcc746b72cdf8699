//! Process-wide counters and latency histograms, rendered in the Prometheus
//! text format by the server's `/metrics`.
//!
//! Plain atomics in one static: recording is a few relaxed adds on paths that
//! already wait on an fsync or a socket, and a scrape reads a consistent
//! enough picture without stopping anything. Histograms use fixed buckets
//! (seconds) chosen around the ledger's commit latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use garrison_ledger::{
    Appended, Ledger, NewEvent, OrderSnapshot, Query, RebuildStats, Record, RunSnapshot,
};
use serde_json::Value;
use tokio::sync::broadcast;

/// Upper bounds of the latency buckets, in seconds (`+Inf` is implied).
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A latency histogram with [`BOUNDS`] buckets.
pub struct Histogram {
    /// Observations per bucket (not cumulative; summed when rendered).
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = BOUNDS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Everything `/metrics` reports besides gauges read at scrape time.
pub struct Metrics {
    /// New events stored (replays of an existing `event_id` not counted).
    pub ledger_appended: Counter,
    pub ledger_duplicates: Counter,
    pub ledger_append_errors: Counter,
    /// One observation per append or batch call, until it is durable.
    pub ledger_append_seconds: Histogram,
    /// Milestone ingest answers by status: accepted, duplicate, rejected.
    pub ingest_accepted: Counter,
    pub ingest_duplicate: Counter,
    pub ingest_rejected: Counter,
    /// Claims that handed out a job, and how long taking one took.
    pub claims: Counter,
    pub claim_seconds: Histogram,
    pub lease_expiries: Counter,
    /// Events stored, by type (patrol ticks included).
    events_by_type: Mutex<BTreeMap<String, u64>>,
    /// PATROL_TICK events by the patrol that wrote them.
    patrol_ticks: Mutex<BTreeMap<String, u64>>,
    /// HTTP requests by method, matched route and status.
    http: Mutex<BTreeMap<(String, String, u16), Arc<Histogram>>>,
}

/// The process's metrics.
pub static METRICS: Metrics = Metrics {
    ledger_appended: Counter::new(),
    ledger_duplicates: Counter::new(),
    ledger_append_errors: Counter::new(),
    ledger_append_seconds: Histogram::new(),
    ingest_accepted: Counter::new(),
    ingest_duplicate: Counter::new(),
    ingest_rejected: Counter::new(),
    claims: Counter::new(),
    claim_seconds: Histogram::new(),
    lease_expiries: Counter::new(),
    events_by_type: Mutex::new(BTreeMap::new()),
    patrol_ticks: Mutex::new(BTreeMap::new()),
    http: Mutex::new(BTreeMap::new()),
};

impl Metrics {
    /// Records one HTTP request; `route` is the matched route template
    /// (`/runs/{id}`), never the raw path, so ids do not explode the series.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let key = (method.to_string(), route.to_string(), status);
        let hist = self
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        hist.observe(took);
    }

    fn observe_appended(&self, appended: &[Appended], took: Duration) {
        self.ledger_append_seconds.observe(took);
        let mut fresh = 0;
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        let mut ticks: BTreeMap<String, u64> = BTreeMap::new();
        for a in appended.iter().filter(|a| !a.duplicate) {
            fresh += 1;
            let t = a.record.event_type.as_str();
            *by_type.entry(t).or_default() += 1;
            if t == "PATROL_TICK" {
                let service = a.record.payload["service"].as_str().unwrap_or("unknown");
                *ticks.entry(service.to_string()).or_default() += 1;
            }
        }
        self.ledger_appended.add(fresh);
        self.ledger_duplicates.add(appended.len() as u64 - fresh);
        {
            let mut map = self
                .events_by_type
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (t, n) in by_type {
                *map.entry(t.to_string()).or_default() += n;
            }
        }
        if !ticks.is_empty() {
            let mut map = self
                .patrol_ticks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (s, n) in ticks {
                *map.entry(s).or_default() += n;
            }
        }
    }

    /// The exposition text, with `gauges` (name, help, value) read by the
    /// caller at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::with_capacity(8192);
        let mut counter = |name: &str, help: &str, rows: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                let labels = if labels.is_empty() {
                    String::new()
                } else {
                    format!("{{{labels}}}")
                };
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            "garrison_ledger_appends_total",
            "Events stored by the ledger (replays of an existing event_id not counted).",
            &[(String::new(), self.ledger_appended.get())],
        );
        counter(
            "garrison_ledger_duplicate_appends_total",
            "Appends that replayed an existing event_id and stored nothing.",
            &[(String::new(), self.ledger_duplicates.get())],
        );
        counter(
            "garrison_ledger_append_errors_total",
            "Append calls that failed (conflicts, illegal transitions, storage errors).",
            &[(String::new(), self.ledger_append_errors.get())],
        );
        let rows = |m: &Mutex<BTreeMap<String, u64>>, label: &str| -> Vec<(String, u64)> {
            m.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(k, v)| (format!("{label}=\"{}\"", escape(k)), *v))
                .collect()
        };
        counter(
            "garrison_ledger_events_total",
            "Events stored, by type.",
            &rows(&self.events_by_type, "type"),
        );
        counter(
            "garrison_milestone_ingest_total",
            "Milestone ingest answers, by status.",
            &[
                ("status=\"accepted\"".into(), self.ingest_accepted.get()),
                ("status=\"duplicate\"".into(), self.ingest_duplicate.get()),
                ("status=\"rejected\"".into(), self.ingest_rejected.get()),
            ],
        );
        counter(
            "garrison_claims_total",
            "Claims that handed a job to a worker.",
            &[(String::new(), self.claims.get())],
        );
        counter(
            "garrison_lease_expiries_total",
            "Leases the duty officer found expired.",
            &[(String::new(), self.lease_expiries.get())],
        );
        counter(
            "garrison_patrol_ticks_total",
            "PATROL_TICK events, by patrol.",
            &rows(&self.patrol_ticks, "service"),
        );
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let mut histogram = |name: &str, help: &str, rows: Vec<(String, Arc<Histogram>)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (labels, h) in rows {
                h.render(&mut out, name, &labels);
            }
        };
        histogram(
            "garrison_ledger_append_seconds",
            "Time from an append or batch call until it is durable.",
            vec![(
                String::new(),
                Arc::new(self.ledger_append_seconds.snapshot()),
            )],
        );
        histogram(
            "garrison_claim_seconds",
            "Time to claim a job (compare-and-append, worktree, prepare).",
            vec![(String::new(), Arc::new(self.claim_seconds.snapshot()))],
        );
        let http: Vec<_> = self
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((method, route, status), h)| {
                (
                    format!(
                        "method=\"{}\",route=\"{}\",status=\"{status}\"",
                        escape(method),
                        escape(route)
                    ),
                    h.clone(),
                )
            })
            .collect();
        histogram(
            "garrison_http_request_seconds",
            "HTTP requests, by method, route template and status.",
            http,
        );
        out
    }
}

impl Histogram {
    fn snapshot(&self) -> Histogram {
        let h = Histogram::new();
        for (to, from) in h.buckets.iter().zip(&self.buckets) {
            to.store(from.load(Relaxed), Relaxed);
        }
        h.sum_us.store(self.sum_us.load(Relaxed), Relaxed);
        h
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A [`Ledger`] that records every append in [`METRICS`]; everything else
/// passes straight through.
pub struct Metered(pub Arc<dyn Ledger>);

impl Metered {
    pub fn wrap(ledger: Arc<dyn Ledger>) -> Arc<dyn Ledger> {
        Arc::new(Metered(ledger))
    }
}

#[async_trait]
impl Ledger for Metered {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    async fn append_batch(&self, events: Vec<NewEvent>) -> garrison_ledger::Result<Vec<Appended>> {
        let started = Instant::now();
        let result = self.0.append_batch(events).await;
        match &result {
            Ok(done) => METRICS.observe_appended(done, started.elapsed()),
            Err(_) => METRICS.ledger_append_errors.add(1),
        }
        result
    }

    async fn read(&self, query: &Query) -> garrison_ledger::Result<Vec<Record>> {
        self.0.read(query).await
    }

    async fn get(&self, event_id: &str) -> garrison_ledger::Result<Option<Record>> {
        self.0.get(event_id).await
    }

    async fn stream_version(&self, stream: &str) -> garrison_ledger::Result<i64> {
        self.0.stream_version(stream).await
    }

    async fn head(&self) -> garrison_ledger::Result<i64> {
        self.0.head().await
    }

    async fn run_snapshot(&self, run_id: &str) -> garrison_ledger::Result<Option<RunSnapshot>> {
        self.0.run_snapshot(run_id).await
    }

    async fn order_snapshot(
        &self,
        order_id: &str,
    ) -> garrison_ledger::Result<Option<OrderSnapshot>> {
        self.0.order_snapshot(order_id).await
    }

    async fn run_orders(&self, run_id: &str) -> garrison_ledger::Result<Vec<OrderSnapshot>> {
        self.0.run_orders(run_id).await
    }

    async fn push_dead_letter(
        &self,
        mailbox: &str,
        entry: Value,
        keep: usize,
    ) -> garrison_ledger::Result<()> {
        self.0.push_dead_letter(mailbox, entry, keep).await
    }

    async fn dead_letters(
        &self,
        mailbox: &str,
        limit: usize,
    ) -> garrison_ledger::Result<Vec<Value>> {
        self.0.dead_letters(mailbox, limit).await
    }

    async fn dead_letter_mailboxes(&self) -> garrison_ledger::Result<Vec<String>> {
        self.0.dead_letter_mailboxes().await
    }

    async fn rebuild(&self) -> garrison_ledger::Result<RebuildStats> {
        self.0.rebuild().await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.0.subscribe()
    }

    async fn close(&self) -> garrison_ledger::Result<()> {
        self.0.close().await
    }
}

#[async_trait]
impl garrison_ledger::Leases for Metered {
    async fn append_leased(
        &self,
        events: Vec<NewEvent>,
        op: garrison_ledger::LeaseOp,
    ) -> garrison_ledger::Result<Vec<Appended>> {
        let started = Instant::now();
        let result = self.0.append_leased(events, op).await;
        match &result {
            Ok(done) => METRICS.observe_appended(done, started.elapsed()),
            Err(_) => METRICS.ledger_append_errors.add(1),
        }
        result
    }

    async fn lease(
        &self,
        order_id: &str,
    ) -> garrison_ledger::Result<Option<garrison_ledger::Lease>> {
        self.0.lease(order_id).await
    }

    async fn leases(
        &self,
        lapsed_only: bool,
    ) -> garrison_ledger::Result<Vec<garrison_ledger::Lease>> {
        self.0.leases(lapsed_only).await
    }

    async fn renew_lease(
        &self,
        order_id: &str,
        token: &str,
        ttl: std::time::Duration,
    ) -> garrison_ledger::Result<bool> {
        self.0.renew_lease(order_id, token, ttl).await
    }

    async fn lapse_lease(&self, order_id: &str, token: &str) -> garrison_ledger::Result<bool> {
        self.0.lapse_lease(order_id, token).await
    }

    async fn adopt_lease(
        &self,
        grant: garrison_ledger::Grant,
        version: i64,
    ) -> garrison_ledger::Result<bool> {
        self.0.adopt_lease(grant, version).await
    }

    async fn drop_lease(&self, order_id: &str, token: &str) -> garrison_ledger::Result<bool> {
        self.0.drop_lease(order_id, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_in_seconds() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
        assert!(out.contains("x_sum 20.0033\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
