//! Two orchestrators on one PostgreSQL ledger in one process, as two nodes
//! with different services: each one's queue follows the other's appends,
//! a lease granted by one is renewed and ended through the other, and a
//! lapsed lease is reissued by the node that runs the duty officer, after
//! which the old holder's report changes nothing.

use std::sync::Arc;
use std::time::Duration;

use garrison_agent::UnitOutcome;
use garrison_contracts::ironclaw::{EventType, NewEvent, OrderStatus};
use garrison_ledger::Ledger;
use garrison_ledger::postgres::PgLedger;
use garrison_orchestration::{
    Job, OrchestrationError, Orchestrator, Report, Roles, Settings, spawn_follower,
};
use serde_json::json;
use tokio::sync::watch;

async fn database(test: &str) -> Option<String> {
    garrison_test_support::db::scratch_database(test)
        .await
        .expect("create a scratch database on GARRISON_TEST_DATABASE_URL")
}

fn settings(dir: &std::path::Path, roles: Roles) -> Settings {
    let mut s = Settings::new(dir);
    s.default_profile = "noop".into();
    s.workers = 0;
    s.lease = Duration::from_secs(30);
    s.roles = roles;
    s
}

fn roles(names: &[&str]) -> Roles {
    let mut r = Roles::NONE;
    for n in names {
        assert!(r.select(n), "{n}");
    }
    r
}

/// A dispatched run of `n` orders without a theater (the CO's plan shape).
async fn seed(ledger: &Arc<dyn Ledger>, orch: &Orchestrator, n: usize) -> Vec<String> {
    let run = "run-1";
    let mut batch = vec![
        NewEvent::new(EventType::RunCreated)
            .run(run)
            .payload(json!({"objective": "shared"})),
        NewEvent::new(EventType::RunUpdated)
            .run(run)
            .payload(json!({"metadata": {"planned_at": "2026-01-01T00:00:00.000Z", "orders": n}})),
    ];
    let ids: Vec<String> = (0..n).map(|i| format!("order-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        batch.push(
            NewEvent::new(EventType::OrderCreated)
                .run(run)
                .order(id)
                .payload(json!({"plan_id": format!("o{i}"), "objective": "x", "depends_on": [],
                    "lock_scope": [], "profile": {"name": "noop"}, "constraints": {"max_retries": 2}})),
        );
    }
    ledger.append_batch(batch).await.unwrap();
    orch.dispatch(run).await.unwrap();
    ids
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn succeeded(job: &Job) -> Report {
    Report {
        order_id: job.message.order_id.clone(),
        lease_token: job.lease_token.clone(),
        outcome: UnitOutcome::Succeeded,
        summary: "done".into(),
        artifacts: Vec::new(),
        aar: None,
        result: None,
        commit_sha: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_queue_and_the_leases() {
    let Some(url) = database("nodes").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let l1: Arc<dyn Ledger> = Arc::new(PgLedger::connect(&url).await.unwrap());
    let l2: Arc<dyn Ledger> = Arc::new(PgLedger::connect(&url).await.unwrap());
    // Node 1: CO, duty officer and workers; node 2: workers only.
    let n1 = Orchestrator::new(
        l1.clone(),
        settings(dir.path(), roles(&["co", "worker", "duty"])),
    );
    let n2 = Orchestrator::new(l2.clone(), settings(dir.path(), roles(&["worker"])));
    let (down_tx, down) = watch::channel(false);
    let head = l1.head().await.unwrap();
    let f1 = spawn_follower(n1.clone(), head, down.clone());
    let f2 = spawn_follower(n2.clone(), head, down.clone());

    let ids = seed(&l1, &n1, 3).await;
    assert_eq!(n1.queue.depth(), 3);
    until("node 2 to see the enqueued orders", || {
        n2.queue.depth() == 3
    })
    .await;

    // Node 2 claims; node 1 sees the claim (and cannot claim the same order).
    let a = n2
        .claim("u2", None)
        .await
        .unwrap()
        .expect("a job on node 2");
    until("node 1 to see node 2's claim", || {
        n1.queue.depth() == 2 && n1.queue.active_count() == 1
    })
    .await;
    assert!(
        n1.claim("u1", Some(&a.message.order_id))
            .await
            .unwrap()
            .is_none()
    );
    // The lease node 2 granted is renewed and ended through node 1.
    assert!(
        n1.heartbeat(&a.message.order_id, &a.lease_token)
            .await
            .unwrap()
    );
    let done = n1.report(succeeded(&a)).await.unwrap();
    assert_eq!(done.status, "COMPLETED");
    until("node 2 to see the report", || n2.queue.active_count() == 0).await;

    // A claim by node 1 whose unit dies: node 1's duty officer reissues it,
    // node 2 claims the reissue, and the dead attempt's report is refused.
    let b = n1
        .claim("u1", None)
        .await
        .unwrap()
        .expect("a job on node 1");
    assert!(
        l2.lapse_lease(&b.message.order_id, &b.lease_token)
            .await
            .unwrap()
    );
    assert!(n2.duty_patrol().await.is_ok(), "node 2 may patrol by hand");
    let patrol = n1.duty_patrol().await.unwrap();
    let reissued_by_someone = patrol.reissued.contains(&b.message.order_id)
        || l1
            .order_snapshot(&b.message.order_id)
            .await
            .unwrap()
            .unwrap()
            .attempt
            == 2;
    assert!(reissued_by_someone, "{patrol:?}");
    until("node 2 to see the reissue", || {
        n2.queue.depth() == 2 && n2.queue.active_count() == 0
    })
    .await;
    let mut retry = None;
    while retry.is_none() {
        let j = n2
            .claim("u2", None)
            .await
            .unwrap()
            .expect("a job on node 2");
        if j.message.order_id == b.message.order_id {
            retry = Some(j);
        } else {
            n2.report(succeeded(&j)).await.unwrap();
        }
    }
    let retry = retry.unwrap();
    assert_eq!(retry.message.attempt, 2);
    let late = n1.report(succeeded(&b)).await;
    assert!(
        matches!(late, Err(OrchestrationError::Conflict(_))),
        "{late:?}"
    );
    n2.report(succeeded(&retry)).await.unwrap();
    while let Some(j) = n2.claim("u2", None).await.unwrap() {
        n2.report(succeeded(&j)).await.unwrap();
    }
    for id in &ids {
        let o = l1.order_snapshot(id).await.unwrap().unwrap();
        assert_eq!(o.status, OrderStatus::Completed, "{id}");
    }
    assert!(l1.leases(false).await.unwrap().is_empty());

    let _ = down_tx.send(true);
    f1.await.unwrap();
    f2.await.unwrap();
    l1.close().await.unwrap();
    l2.close().await.unwrap();
}
