//! Reports of orders without a theater that leave the run's advance to a
//! later report (`advance_can_wait`), on a real SQLite ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use garrison_agent::UnitOutcome;
use garrison_contracts::ironclaw::{EventType, OrderStatus, RunStatus};
use garrison_ledger::Ledger;
use serde_json::json;

use super::{Job, Orchestrator, Report, Settings, new_id};

struct Fixture {
    orch: Arc<Orchestrator>,
    run_id: String,
    _dir: tempfile::TempDir,
}

/// A dispatched run without a theater whose orders are `(plan id, depends on)`.
async fn fixture(orders: &[(&str, &[&str])]) -> (Fixture, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(
        garrison_ledger::sqlite::SqliteLedger::open(&dir.path().join("ledger.db")).unwrap(),
    );
    let mut settings = Settings::new(dir.path());
    settings.default_profile = "noop".into();
    let orch = Orchestrator::new(ledger.clone(), settings);
    let run_id = new_id();
    let ev = |t| orch.event(t).run(&run_id);
    ledger
        .append(ev(EventType::RunCreated).payload(json!({"objective": "o"})))
        .await
        .unwrap();
    let ids: Vec<String> = orders.iter().map(|_| new_id()).collect();
    let id_of = |p: &str| ids[orders.iter().position(|(q, _)| *q == p).unwrap()].clone();
    let mut batch =
        vec![ev(EventType::RunUpdated).payload(json!({"metadata": {"planned_at": "x"}}))];
    for (i, (plan_id, deps)) in orders.iter().enumerate() {
        let deps: Vec<String> = deps.iter().map(|d| id_of(d)).collect();
        batch.push(ev(EventType::OrderCreated).order(&ids[i]).payload(json!({
            "plan_id": plan_id, "objective": plan_id, "depends_on": deps,
            "lock_scope": [], "profile": {"name": "noop"},
        })));
    }
    ledger.append_batch(batch).await.unwrap();
    ledger
        .append(ev(EventType::RunUpdated).payload(json!({"metadata": {"dispatched_at": "x"}})))
        .await
        .unwrap();
    orch.advance(&run_id).await.unwrap();
    (
        Fixture {
            orch,
            run_id,
            _dir: dir,
        },
        ids,
    )
}

impl Fixture {
    async fn claim(&self, order_id: &str) -> Job {
        self.orch.claim("u", Some(order_id)).await.unwrap().unwrap()
    }

    async fn finish(&self, job: &Job) {
        let done = self
            .orch
            .report(Report {
                order_id: job.message.order_id.clone(),
                lease_token: job.lease_token.clone(),
                outcome: UnitOutcome::Succeeded,
                summary: "done".into(),
                artifacts: Vec::new(),
                aar: None,
                result: None,
                commit_sha: None,
            })
            .await
            .unwrap();
        self.orch.after_report(&done).await.unwrap();
    }

    async fn run_status(&self) -> RunStatus {
        self.orch.run(&self.run_id).await.unwrap().status
    }

    async fn order_status(&self, order_id: &str) -> (OrderStatus, EventType) {
        let o = self
            .orch
            .ledger
            .order_snapshot(order_id)
            .await
            .unwrap()
            .unwrap();
        (o.status, o.last_event_type)
    }
}

#[tokio::test]
async fn dependents_advance_at_once_and_the_last_report_ends_the_run() {
    let (f, ids) = fixture(&[("a", &[]), ("b", &[]), ("c", &["a"])]).await;
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    assert_eq!(f.orch.queue.depth(), 2);
    let job_a = f.claim(a).await;
    let job_b = f.claim(b).await;

    // Nothing depends on b and a is still held: the advance waits.
    f.finish(&job_b).await;
    assert_eq!(f.orch.take_deferred(), vec![f.run_id.clone()]);
    assert_eq!(f.run_status().await, RunStatus::Open);

    // c depends on a: a's report advances at once and enqueues c.
    f.finish(&job_a).await;
    assert_eq!(
        f.order_status(c).await,
        (OrderStatus::Queued, EventType::OrderEnqueued)
    );
    assert!(f.orch.take_deferred().is_empty());

    // The last order of the run: its report ends the run.
    let job_c = f.claim(c).await;
    f.finish(&job_c).await;
    assert_eq!(f.run_status().await, RunStatus::Complete);
}

#[tokio::test]
async fn the_duty_officer_advances_a_run_whose_advance_was_left_waiting() {
    let (f, ids) = fixture(&[("x", &[]), ("y", &[])]).await;
    let job_x = f.claim(&ids[0]).await;
    let job_y = f.claim(&ids[1]).await;
    f.finish(&job_x).await;
    assert_eq!(f.run_status().await, RunStatus::Open);

    // y ends without a report through this process (as if another node
    // completed it): nobody here advances the run after it.
    let y = f
        .orch
        .ledger
        .order_snapshot(&ids[1])
        .await
        .unwrap()
        .unwrap();
    f.orch.queue.release(&ids[1]);
    f.orch
        .ledger
        .append(
            super::co::ev_for_order(f.orch.event(EventType::OrderCompleted), &y)
                .payload(json!({"attempt": job_y.message.attempt})),
        )
        .await
        .unwrap();
    assert_eq!(f.run_status().await, RunStatus::Open);

    f.orch.duty_patrol().await.unwrap();
    assert_eq!(f.run_status().await, RunStatus::Complete);
}

#[tokio::test]
async fn a_report_advances_at_once_when_nothing_else_of_the_run_is_queued() {
    let (f, ids) = fixture(&[("only", &[])]).await;
    let job = f.claim(&ids[0]).await;
    f.finish(&job).await;
    assert_eq!(f.run_status().await, RunStatus::Complete);
    assert!(f.orch.take_deferred().is_empty());
}

#[tokio::test]
async fn unknown_runs_never_wait() {
    let dir = tempfile::tempdir().unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(
        garrison_ledger::sqlite::SqliteLedger::open(&dir.path().join("ledger.db")).unwrap(),
    );
    let orch = Orchestrator::new(ledger, Settings::new(dir.path()));
    // No full advance of this run in this process: no dependency knowledge.
    assert!(!orch.advance_can_wait("run", "order"));
}
