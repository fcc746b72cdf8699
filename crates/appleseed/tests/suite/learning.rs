//! The learning service against a real SQLite ledger: policy ticks over
//! synthetic run/order events, and the Appleseed feed of Garrison's own runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use garrison_appleseed::learning::{self, appleseed_feed};
use garrison_contracts::ironclaw::{EventType, NewEvent};
use garrison_ledger::sqlite::SqliteLedger;
use garrison_ledger::{Ledger, Query};
use serde_json::{Value, json};
use tokio::sync::watch;

fn open(dir: &Path) -> Arc<dyn Ledger> {
    Arc::new(SqliteLedger::open(&dir.join("ledger.db")).unwrap())
}

/// `2026-01-01T00:00:00Z` plus `ms`.
fn at(ms: i64) -> String {
    let base: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    garrison_ledger::format_ts(base + jiff::SignedDuration::from_millis(ms))
}

struct Script {
    ledger: Arc<dyn Ledger>,
    next_order: u32,
}

impl Script {
    async fn push(&self, ev: NewEvent) {
        self.ledger.append(ev).await.unwrap();
    }

    async fn run(&self, run_id: &str, objective: &str) {
        self.push(
            NewEvent::new(EventType::RunCreated)
                .run(run_id)
                .theater("demo")
                .payload(json!({"objective": objective, "theater_id": "demo"})),
        )
        .await;
    }

    async fn create(&mut self, run_id: &str, profile: &str, task_type: &str) -> String {
        self.next_order += 1;
        let id = format!("o{}", self.next_order);
        self.push(
            NewEvent::new(EventType::OrderCreated)
                .run(run_id)
                .order(&id)
                .theater("demo")
                .payload(json!({"objective": format!("order {id}"), "profile": {"name": profile}, "type": task_type})),
        )
        .await;
        id
    }

    async fn order_event(&self, run_id: &str, order_id: &str, t: EventType) {
        self.push(
            NewEvent::new(t)
                .run(run_id)
                .order(order_id)
                .theater("demo")
                .payload(json!({"reason": "test"})),
        )
        .await;
    }

    async fn timed(&self, run_id: &str, order_id: &str, t: EventType, ts: i64) {
        let mut ev = NewEvent::new(t)
            .run(run_id)
            .order(order_id)
            .theater("demo")
            .payload(json!({}));
        ev.ts = Some(at(ts));
        self.push(ev).await;
    }

    /// One attempt: claimed and started at `start`, ended with `end` after `ms`.
    async fn attempt(&self, run_id: &str, order_id: &str, start: i64, ms: i64, end: EventType) {
        self.timed(run_id, order_id, EventType::OrderClaimed, start)
            .await;
        self.timed(run_id, order_id, EventType::OrderStarted, start)
            .await;
        self.timed(run_id, order_id, end, start + ms).await;
    }

    /// A lapsed attempt: started, blocked, reissued.
    async fn lapse(&self, run_id: &str, order_id: &str, start: i64) {
        self.timed(run_id, order_id, EventType::OrderClaimed, start)
            .await;
        self.timed(run_id, order_id, EventType::OrderStarted, start)
            .await;
        self.order_event(run_id, order_id, EventType::OrderBlocked)
            .await;
        self.order_event(run_id, order_id, EventType::OrderReissued)
            .await;
    }

    async fn integrate(&self, run_id: &str, order_id: &str, passed: bool) {
        let t = if passed {
            EventType::Integrated
        } else {
            EventType::IntegrationFailed
        };
        self.order_event(run_id, order_id, t).await;
    }
}

fn stat<'a>(doc: &'a Value, profile: &str, task_type: &str) -> &'a Value {
    doc["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["profile"] == profile && s["task_type"] == task_type)
        .unwrap_or_else(|| panic!("no stats for {profile}/{task_type}: {doc}"))
}

#[tokio::test]
async fn tick_writes_versioned_policy_from_order_outcomes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let ledger = open(data);
    let mut s = Script {
        ledger: ledger.clone(),
        next_order: 0,
    };
    s.run("r1", "build the thing").await;

    // `fast` on code: 4 of 4 completed, 1–4 s.
    for (i, ms) in [1000, 2000, 3000, 4000].into_iter().enumerate() {
        let o = s.create("r1", "fast", "code").await;
        s.attempt("r1", &o, i as i64 * 100_000, ms, EventType::OrderCompleted)
            .await;
    }
    // `slow` on code: 2 completed, 2 failed (one after two reissues), 10+ s.
    for (i, end) in [
        EventType::OrderCompleted,
        EventType::OrderCompleted,
        EventType::OrderFailed,
    ]
    .into_iter()
    .enumerate()
    {
        let o = s.create("r1", "slow", "code").await;
        s.attempt("r1", &o, 1_000_000 + i as i64 * 100_000, 10_000, end)
            .await;
    }
    let flaky = s.create("r1", "slow", "code").await;
    s.lapse("r1", &flaky, 2_000_000).await;
    s.lapse("r1", &flaky, 2_010_000).await;
    s.attempt("r1", &flaky, 2_020_000, 5_000, EventType::OrderFailed)
        .await;
    // review: `slow` 3 of 3, `fast` only 2 (not enough evidence to prefer).
    for i in 0..3 {
        let o = s.create("r1", "slow", "review").await;
        s.attempt(
            "r1",
            &o,
            3_000_000 + i * 100_000,
            20_000,
            EventType::OrderCompleted,
        )
        .await;
    }
    for i in 0..2 {
        let o = s.create("r1", "fast", "review").await;
        s.attempt(
            "r1",
            &o,
            4_000_000 + i * 100_000,
            500,
            EventType::OrderCompleted,
        )
        .await;
    }
    // A user correction on the run.
    s.push(
        NewEvent::new(EventType::RunUpdated)
            .run("r1")
            .payload(json!({"metadata": {"correction": "use the v2 API"}})),
    )
    .await;
    // One still running: counted as an order, not as settled.
    let open_order = s.create("r1", "fast", "code").await;
    s.timed("r1", &open_order, EventType::OrderClaimed, 5_000_000)
        .await;

    let head = ledger.head().await.unwrap();
    let doc = learning::tick(ledger.as_ref(), data).await.unwrap();
    assert_eq!(doc.policy_version, 1);
    assert_eq!(doc.through_seq, head);
    assert_eq!(doc.orders_considered, 14);
    let v = serde_json::to_value(&doc).unwrap();

    let fast_code = stat(&v, "fast", "code");
    assert_eq!(fast_code["orders"], 5);
    assert_eq!(fast_code["completed"], 4);
    assert_eq!(fast_code["failed"], 0);
    assert_eq!(fast_code["success_rate"], 1.0);
    assert_eq!(fast_code["retries"], 0);
    assert_eq!(fast_code["latency_ms"]["samples"], 4);
    assert_eq!(fast_code["latency_ms"]["p50"], 2000);
    assert_eq!(fast_code["latency_ms"]["p90"], 4000);
    assert_eq!(fast_code["latency_ms"]["max"], 4000);
    assert_eq!(fast_code["corrected_runs"], 1);

    let slow_code = stat(&v, "slow", "code");
    assert_eq!(slow_code["orders"], 4);
    assert_eq!(slow_code["completed"], 2);
    assert_eq!(slow_code["failed"], 2);
    assert_eq!(slow_code["success_rate"], 0.5);
    assert_eq!(slow_code["retries"], 2);
    assert_eq!(slow_code["retried_orders"], 1);
    // The flaky order counts from its first start: 25 s.
    assert_eq!(slow_code["latency_ms"]["max"], 25_000);
    assert!(
        slow_code["latency_ms"]["p50"].as_u64().unwrap()
            > fast_code["latency_ms"]["p50"].as_u64().unwrap()
    );

    assert_eq!(stat(&v, "slow", "review")["success_rate"], 1.0);
    assert_eq!(stat(&v, "fast", "review")["completed"], 2);
    assert_eq!(
        doc.routing["code"].preferred_profile.as_deref(),
        Some("fast")
    );
    // `fast` is quicker on review but has only 2 settled orders there.
    assert_eq!(
        doc.routing["review"].preferred_profile.as_deref(),
        Some("slow")
    );
    assert_eq!(doc.user_corrections.events, 1);
    assert_eq!(doc.user_corrections.runs, 1);

    let v1 = data.join("learning/policy-v1.json");
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&v1).unwrap()).unwrap();
    assert_eq!(on_disk, v);
    let ev = ledger
        .read(&Query {
            event_type: Some(EventType::PolicyUpdated),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].payload["policy_version"], 1);
    assert_eq!(ev[0].payload["through_seq"], head);
    assert_eq!(ev[0].payload["orders_considered"], 14);
    assert_eq!(ev[0].payload["path"], v1.display().to_string());

    // Same events → same stats and routing; the version moves on.
    let doc2 = learning::tick(ledger.as_ref(), data).await.unwrap();
    assert_eq!(doc2.policy_version, 2);
    assert_eq!(doc2.stats, doc.stats);
    assert_eq!(doc2.routing, doc.routing);
    // The first tick's POLICY_UPDATED is past its own head, not an order event.
    assert_eq!(doc2.through_seq, head + 1);
    assert!(data.join("learning/policy-v1.json").exists());
    assert!(data.join("learning/policy-v2.json").exists());
    let latest: Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("learning/policy-latest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(latest["policy_version"], 2);
    let last = ledger
        .read(&Query {
            event_type: Some(EventType::PolicyUpdated),
            newest_first: true,
            limit: Some(1),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(last[0].payload["policy_version"], 2);

    // A lost latest copy does not reuse a version: the ledger remembers.
    std::fs::remove_dir_all(data.join("learning")).unwrap();
    let doc3 = learning::tick(ledger.as_ref(), data).await.unwrap();
    assert_eq!(doc3.policy_version, 3);
    ledger.close().await.unwrap();
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs the feed until it has handled `through`, then stops it.
async fn feed_until(ledger: &Arc<dyn Ledger>, data: &Path, through: i64) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(appleseed_feed::run(ledger.clone(), data.to_path_buf(), rx));
    tokio::time::timeout(Duration::from_secs(20), async {
        while appleseed_feed::read_position(data) < through {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the feed did not catch up");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the feed did not stop")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn feed_turns_runs_into_appleseed_sessions_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let ledger = open(data);
    let mut s = Script {
        ledger: ledger.clone(),
        next_order: 0,
    };
    // r1: both orders integrated → complete, score 1.
    s.run("r1", "add a health endpoint").await;
    for _ in 0..2 {
        let o = s.create("r1", "fast", "code").await;
        s.attempt("r1", &o, 0, 1000, EventType::OrderCompleted)
            .await;
        s.integrate("r1", &o, true).await;
    }
    s.push(
        NewEvent::new(EventType::RunCompleted)
            .run("r1")
            .theater("demo")
            .payload(json!({"summary": "done"})),
    )
    .await;
    // r2: one integrated, one failed its gates → failed, score 0.5 × 0.5.
    s.run("r2", "migrate the schema").await;
    let a = s.create("r2", "slow", "code").await;
    s.attempt("r2", &a, 0, 1000, EventType::OrderCompleted)
        .await;
    s.integrate("r2", &a, true).await;
    let b = s.create("r2", "slow", "code").await;
    s.attempt("r2", &b, 0, 1000, EventType::OrderCompleted)
        .await;
    s.integrate("r2", &b, false).await;
    s.push(
        NewEvent::new(EventType::RunFailed)
            .run("r2")
            .theater("demo")
            .payload(json!({"summary": "one order failed", "reason": "o4: INTEGRATION_FAILED"})),
    )
    .await;
    let head = ledger.head().await.unwrap();

    feed_until(&ledger, data, head).await;
    let dir = data.join("appleseed");
    let envelopes = lines(&dir.join("runtime_event_envelopes.jsonl"));
    assert_eq!(envelopes.len(), 4, "{envelopes:?}");
    let kinds: Vec<(&str, &str)> = envelopes
        .iter()
        .map(|e| {
            (
                e["event"]["session_id"].as_str().unwrap(),
                e["event"]["event_kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("r1", "session_started"),
            ("r1", "session_feedback"),
            ("r2", "session_started"),
            ("r2", "session_feedback"),
        ]
    );
    assert_eq!(envelopes[0]["source"], "garrison");
    assert_eq!(envelopes[0]["event"]["task"], "add a health endpoint");
    let created = ledger
        .read(&Query {
            run_id: Some("r1".into()),
            event_type: Some(EventType::RunCreated),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(
        envelopes[0]["envelope_id"],
        appleseed_feed::envelope_id(&created[0].event_id)
    );

    let projected = lines(&dir.join("projected_feedback.jsonl"));
    assert_eq!(projected.len(), 2, "{projected:?}");
    let r1 = &projected[0];
    assert_eq!(r1["session_id"], "r1");
    assert_eq!(r1["source_event_kind"], "session_feedback");
    assert_eq!(r1["task"], "add a health endpoint");
    assert_eq!(r1["status"], "success");
    assert_eq!(r1["score"], 1.0);
    assert_eq!(r1["selected_skill_ids"], json!(["fast"]));
    assert_eq!(r1["metadata"]["orders_delivered"], 2);
    let r2 = &projected[1];
    assert_eq!(r2["session_id"], "r2");
    assert_eq!(r2["status"], "partial");
    assert_eq!(r2["score"], 0.25);
    assert_eq!(r2["metadata"]["outcome"], "FAILED");
    assert_eq!(r2["metadata"]["reason"], "o4: INTEGRATION_FAILED");
    assert_eq!(r2["metadata"]["orders_total"], 2);

    // A replay from the start (position lost) finds only duplicates.
    std::fs::remove_file(dir.join(appleseed_feed::POSITION_FILE)).unwrap();
    feed_until(&ledger, data, head).await;
    assert_eq!(lines(&dir.join("runtime_event_envelopes.jsonl")).len(), 4);
    assert_eq!(lines(&dir.join("projected_feedback.jsonl")).len(), 2);
    assert_eq!(appleseed_feed::read_position(data), head);
    ledger.close().await.unwrap();
}
