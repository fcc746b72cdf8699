//! The orchestration services end to end: runs planned into orders, claimed
//! by in-process workers, executed as shell-script units in their own git
//! worktrees, gated and promoted into a real theater repository, with every
//! assertion made against the ledger and the repository.

use std::path::Path;
use std::time::Duration;

use garrison_agent::{PromptMode, UnitOutcome, UnitProfile};
use garrison_contracts::ironclaw::{EventType, OrderStatus, RunStatus};
use garrison_orchestration::{GateCommand, Orchestrator, Report};
use serde_json::{Value, json};

use super::common::{
    Harness, git, main_sha, open_ledger, settings, sh, sh_sharing, sh_unconfined, show_main,
    wait_for,
};

/// A plan order with the fields every order needs.
fn order(id: &str, profile: &str, depends_on: &[&str], lock_scope: &[&str]) -> Value {
    json!({
        "id": id,
        "objective": format!("order {id}"),
        "depends_on": depends_on,
        "lock_scope": lock_scope,
        "profile": profile,
    })
}

/// The AAR an order filed in the mainline, parsed.
fn filed_aar(repo: &Path, order_id: &str) -> Value {
    let path = format!(".garrison/orders/{order_id}/aar.json");
    let text = show_main(repo, &path).unwrap_or_else(|| panic!("main has no {path}"));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_order_dag_runs_in_dependency_order() {
    let h = Harness::start(|data, _| {
        settings(
            data,
            &[
                ("write_a", sh("echo alpha > a.txt && echo wrote a.txt")),
                ("write_b", sh("echo bravo > b.txt && echo wrote b.txt")),
                (
                    "combine",
                    sh("if [ ! -f a.txt ] || [ ! -f b.txt ]; then \
                          echo 'a.txt or b.txt is not in the worktree' >&2; exit 1; \
                        fi; cat a.txt b.txt > c.txt && echo combined"),
                ),
            ],
        )
    });
    let plan = json!({"orders": [
        order("a", "write_a", &[], &[]),
        order("b", "write_b", &[], &[]),
        order("c", "combine", &["a", "b"], &[]),
    ]});
    let (run_id, orders) = h.launch(plan).await;
    h.finish(&run_id, RunStatus::Complete).await;

    for o in orders.values() {
        let snap = h.assert_status(&o.order_id, OrderStatus::Completed).await;
        assert_eq!(
            snap.integration,
            Some(EventType::Integrated),
            "order {} was not integrated",
            o.plan_id
        );
    }
    let (a, b, c) = (
        &orders["a"].order_id,
        &orders["b"].order_id,
        &orders["c"].order_id,
    );
    let integrated_a = h.one_event(a, EventType::Integrated).await.seq;
    let integrated_b = h.one_event(b, EventType::Integrated).await.seq;
    let started_c = h.one_event(c, EventType::OrderStarted).await.seq;
    let enqueued_c = h.one_event(c, EventType::OrderEnqueued).await.seq;
    assert!(
        enqueued_c > integrated_a && enqueued_c > integrated_b,
        "c was enqueued (seq {enqueued_c}) before a ({integrated_a}) and b ({integrated_b}) were integrated"
    );
    assert!(
        started_c > integrated_a && started_c > integrated_b,
        "c started (seq {started_c}) before a ({integrated_a}) and b ({integrated_b}) were integrated"
    );

    let repo = h.repo().await;
    assert_eq!(show_main(&repo, "a.txt").as_deref(), Some("alpha\n"));
    assert_eq!(show_main(&repo, "b.txt").as_deref(), Some("bravo\n"));
    assert_eq!(show_main(&repo, "c.txt").as_deref(), Some("alpha\nbravo\n"));
    for o in orders.values() {
        let aar = filed_aar(&repo, &o.order_id);
        assert_eq!(aar["order_id"], json!(o.order_id));
        assert_eq!(aar["status"], json!("completed"));
    }
    // The records are filed per order, never at the mainline root.
    assert_eq!(show_main(&repo, "aar.json"), None);
    // New files are recorded as added.
    let result: Value = serde_json::from_str(
        &show_main(&repo, &format!(".garrison/orders/{c}/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        result["changes"],
        json!([{"resource": "c.txt", "action": "added"}]),
        "{result}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_dependency_blocks_dependents() {
    let h = Harness::start(|data, _| {
        settings(
            data,
            &[
                ("fail", sh("echo 'cannot do it' >&2; exit 1")),
                ("write", sh("echo done > done.txt")),
            ],
        )
    });
    let mut a = order("a", "fail", &[], &[]);
    a["constraints"] = json!({"max_retries": 0});
    let plan = json!({"orders": [
        a,
        order("b", "write", &["a"], &[]),
        order("c", "write", &["b"], &[]),
    ]});
    let (run_id, orders) = h.launch(plan).await;
    let run = h.finish(&run_id, RunStatus::Failed).await;

    let a = &orders["a"].order_id;
    let failed = h.assert_status(a, OrderStatus::Failed).await;
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("UNIT_FAILED")),
        "a failed for {:?}",
        failed.reason
    );
    assert_eq!(failed.attempt, 1);
    h.one_event(a, EventType::OrderClaimed).await;
    assert!(h.events(a, EventType::OrderReissued).await.is_empty());

    for id in ["b", "c"] {
        let order_id = &orders[id].order_id;
        let snap = h.assert_status(order_id, OrderStatus::Blocked).await;
        assert!(
            snap.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("DEPENDENCY_NOT_MET")),
            "{id} blocked for {:?}",
            snap.reason
        );
        for t in [
            EventType::OrderEnqueued,
            EventType::OrderClaimed,
            EventType::OrderStarted,
        ] {
            assert!(
                h.events(order_id, t).await.is_empty(),
                "{id} has a {t:?} event"
            );
        }
    }
    let ended: Vec<_> = h
        .run_events(&run_id)
        .await
        .into_iter()
        .filter(|e| e.event_type == EventType::RunFailed)
        .collect();
    assert_eq!(ended.len(), 1, "run end events: {ended:#?}");
    let reason = ended[0].payload["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("FAILED") && reason.contains("BLOCKED"),
        "run failure reason: {reason}"
    );
    assert_eq!(run.status, RunStatus::Failed);
    let repo = h.repo().await;
    assert_eq!(show_main(&repo, "done.txt"), None);
    h.stop().await;
}

/// A unit that writes `path`, with its start and end times (ns) in outputs/.
fn timed(path: &str) -> garrison_agent::UnitProfile {
    sh(&format!(
        "date +%s%N > outputs/start && mkdir -p \"$(dirname {path})\" && \
         echo \"$GARRISON_ORDER_ID\" > {path} && sleep 0.5 && date +%s%N > outputs/end"
    ))
}

/// `(start, end)` in ns of a `timed` order, from the records it filed.
fn span(repo: &Path, order_id: &str) -> (u128, u128) {
    let read = |name: &str| {
        let path = format!(".garrison/orders/{order_id}/outputs/{name}");
        show_main(repo, &path)
            .unwrap_or_else(|| panic!("main has no {path}"))
            .trim()
            .parse::<u128>()
            .unwrap()
    };
    (read("start"), read("end"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_conflict_serialises_two_orders() {
    let h = Harness::start(|data, _| {
        settings(
            data,
            &[
                ("src", timed("src/main.py")),
                ("api", timed("src/api.py")),
                ("docs_a", timed("docs/a/notes.md")),
                ("docs_b", timed("docs/b/notes.md")),
            ],
        )
    });
    assert_eq!(h.orch.settings.workers, 2);
    let repo = h.repo().await;

    // Overlapping locks: `src` contains `src/api.py`.
    let (run_id, orders) = h
        .launch(json!({"orders": [
            order("src", "src", &[], &["src"]),
            order("api", "api", &[], &["src/api.py"]),
        ]}))
        .await;
    h.finish(&run_id, RunStatus::Complete).await;
    let (x, y) = (&orders["src"].order_id, &orders["api"].order_id);
    let claim_x = h.one_event(x, EventType::OrderClaimed).await.seq;
    let claim_y = h.one_event(y, EventType::OrderClaimed).await.seq;
    let (first, second) = if claim_x < claim_y { (x, y) } else { (y, x) };
    let first_done = h.one_event(first, EventType::OrderCompleted).await.seq;
    let second_claimed = claim_x.max(claim_y);
    assert!(
        second_claimed > first_done,
        "orders with conflicting locks overlapped: second claimed at seq {second_claimed}, \
         first completed at seq {first_done}"
    );
    let (_, first_end) = span(&repo, first);
    let (second_start, _) = span(&repo, second);
    assert!(
        second_start >= first_end,
        "the second unit started ({second_start}) before the first ended ({first_end})"
    );
    assert!(show_main(&repo, "src/main.py").is_some());
    assert!(show_main(&repo, "src/api.py").is_some());

    // Disjoint locks: both run at once on the two workers.
    let (run_id, orders) = h
        .launch(json!({"orders": [
            order("docs_a", "docs_a", &[], &["docs/a"]),
            order("docs_b", "docs_b", &[], &["docs/b"]),
        ]}))
        .await;
    h.finish(&run_id, RunStatus::Complete).await;
    let (p, q) = (&orders["docs_a"].order_id, &orders["docs_b"].order_id);
    let claimed = [
        h.one_event(p, EventType::OrderClaimed).await.seq,
        h.one_event(q, EventType::OrderClaimed).await.seq,
    ];
    let completed = [
        h.one_event(p, EventType::OrderCompleted).await.seq,
        h.one_event(q, EventType::OrderCompleted).await.seq,
    ];
    let last_claim = claimed.iter().max().copied().unwrap_or_default();
    let first_completion = completed.iter().min().copied().unwrap_or_default();
    assert!(
        last_claim < first_completion,
        "orders with disjoint locks did not overlap: claims at {claimed:?}, completions at {completed:?}"
    );
    let (p_start, p_end) = span(&repo, p);
    let (q_start, q_end) = span(&repo, q);
    assert!(
        p_start < q_end && q_start < p_end,
        "the units did not run at the same time: {p_start}..{p_end} and {q_start}..{q_end}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_unit_is_reissued_and_integrates_once() {
    let h = Harness::start(|data, scratch| {
        let pid_file = scratch.join("unit.pid");
        let script = format!(
            "if [ \"$GARRISON_ATTEMPT\" = 1 ]; then \
               echo $$ > '{pid}.tmp' && mv '{pid}.tmp' '{pid}' && exec sleep 30; \
             fi; echo \"attempt $GARRISON_ATTEMPT\" > deliverable.txt && echo delivered",
            pid = pid_file.display()
        );
        let mut s = settings(data, &[("flaky", sh_unconfined(&script))]);
        s.lease = Duration::from_secs(1);
        s.patrol_interval = Duration::from_millis(200);
        s
    });
    let pid_file = h.scratch().join("unit.pid");
    let (run_id, orders) = h
        .launch(json!({"orders": [order("work", "flaky", &[], &[])]}))
        .await;
    let order_id = &orders["work"].order_id;

    wait_for(
        "the first attempt to write its pid",
        Duration::from_secs(20),
        || pid_file.exists(),
    )
    .await;
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    let killed = std::process::Command::new("kill")
        .args(["-9", pid])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -9 {pid} failed");

    h.finish(&run_id, RunStatus::Complete).await;
    let snap = h.assert_status(order_id, OrderStatus::Completed).await;
    assert_eq!(
        snap.attempt, 2,
        "the order should have completed on attempt 2"
    );
    assert_eq!(snap.integration, Some(EventType::Integrated));
    let reissued = h.one_event(order_id, EventType::OrderReissued).await;
    assert_eq!(reissued.payload["attempt"], json!(2));
    let claims = h.events(order_id, EventType::OrderClaimed).await;
    assert_eq!(claims.len(), 2, "claims: {claims:#?}");
    assert!(claims[0].seq < reissued.seq && reissued.seq < claims[1].seq);
    let done = h.one_event(order_id, EventType::OrderCompleted).await;
    assert_eq!(done.payload["attempt"], json!(2));
    assert!(h.events(order_id, EventType::OrderFailed).await.is_empty());
    h.one_event(order_id, EventType::Integrated).await;

    let repo = h.repo().await;
    assert_eq!(
        show_main(&repo, "deliverable.txt").as_deref(),
        Some("attempt 2\n")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_gate_leaves_mainline_untouched() {
    let h = Harness::start(|data, _| {
        let mut s = settings(
            data,
            &[("write", sh("echo work > deliverable.txt && echo wrote it"))],
        );
        s.gates.insert(
            "default".into(),
            vec![GateCommand {
                name: "always-fails".into(),
                command: vec!["sh".into(), "-c".into(), "exit 3".into()],
                timeout_secs: 30,
            }],
        );
        s
    });
    let repo = h.repo().await;
    let before = main_sha(&repo);

    let (run_id, orders) = h
        .launch(json!({"orders": [order("work", "write", &[], &[])]}))
        .await;
    h.finish(&run_id, RunStatus::Failed).await;
    let order_id = &orders["work"].order_id;
    let snap = h.assert_status(order_id, OrderStatus::Completed).await;
    assert_eq!(snap.integration, Some(EventType::IntegrationFailed));
    let failed = h.one_event(order_id, EventType::IntegrationFailed).await;
    assert_eq!(failed.payload["code"], json!("ACCEPTANCE_FAILED"));
    assert_eq!(
        failed.payload["details"]["gate"]["name"],
        json!("always-fails")
    );
    assert_eq!(failed.payload["details"]["gate"]["exit_code"], json!(3));
    assert!(h.events(order_id, EventType::Integrated).await.is_empty());
    assert!(
        h.events(order_id, EventType::IntegrationPassed)
            .await
            .is_empty()
    );

    assert_eq!(main_sha(&repo), before, "the mainline moved");
    assert_eq!(show_main(&repo, "deliverable.txt"), None);
    assert!(git(&repo, &["status", "--porcelain"]).is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_conflict_is_reported_with_paths() {
    // Each unit waits (bounded) until both have started, so both worktrees
    // come from the same mainline commit.
    let rewrite = |who: &str, barrier: &Path| {
        sh_sharing(
            &format!(
                "mkdir -p '{b}' && touch '{b}'/\"$GARRISON_ORDER_ID\" && i=0; \
             while [ \"$(ls '{b}' | wc -l)\" -lt 2 ]; do \
               i=$((i+1)); if [ $i -gt 200 ]; then echo 'the other order never started' >&2; exit 1; fi; \
               sleep 0.05; \
             done; \
             printf 'line 1 by {who}\\nline 2\\n' > shared.txt && echo rewrote shared.txt",
                b = barrier.display()
            ),
            barrier.parent().unwrap_or(barrier),
        )
    };
    let h = Harness::start(|data, scratch| {
        let barrier = scratch.join("barrier");
        settings(
            data,
            &[
                ("left", rewrite("left", &barrier)),
                ("right", rewrite("right", &barrier)),
            ],
        )
    });
    let repo = h.repo().await;
    std::fs::write(repo.join("shared.txt"), "line 1\nline 2\n").unwrap();
    git(&repo, &["add", "shared.txt"]);
    git(&repo, &["commit", "-q", "-m", "seed shared.txt"]);
    let seeded = main_sha(&repo);

    let (run_id, orders) = h
        .launch(json!({"orders": [
            order("left", "left", &[], &[]),
            order("right", "right", &[], &[]),
        ]}))
        .await;
    h.finish(&run_id, RunStatus::Failed).await;

    let (l, r) = (&orders["left"].order_id, &orders["right"].order_id);
    for id in [l, r] {
        h.assert_status(id, OrderStatus::Completed).await;
        let ready = h.one_event(id, EventType::WorktreeReady).await;
        assert_eq!(
            ready.payload["base_sha"],
            json!(seeded),
            "order {id} did not start from the seeded mainline"
        );
    }
    let l_ok = !h.events(l, EventType::Integrated).await.is_empty();
    let r_ok = !h.events(r, EventType::Integrated).await.is_empty();
    assert!(
        l_ok != r_ok,
        "exactly one of the two orders should integrate (left {l_ok}, right {r_ok})"
    );
    let (winner, loser, who) = if l_ok {
        (l, r, "left")
    } else {
        (r, l, "right")
    };
    h.one_event(winner, EventType::Integrated).await;
    let failed = h.one_event(loser, EventType::IntegrationFailed).await;
    assert_eq!(failed.payload["code"], json!("MERGE_CONFLICT"));
    let paths = failed.payload["details"]["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        paths.contains(&json!("shared.txt")),
        "conflict paths {paths:?} do not name shared.txt"
    );
    assert!(
        h.one_event(winner, EventType::Integrated).await.seq < failed.seq,
        "the failed integration came first"
    );
    // The order's snapshot says why it did not merge.
    let reason = h.order(loser).await.reason.unwrap_or_default();
    assert!(reason.starts_with("MERGE_CONFLICT: "), "{reason}");
    assert_eq!(h.order(winner).await.reason, None);

    assert_eq!(
        show_main(&repo, "shared.txt").as_deref(),
        Some(format!("line 1 by {who}\nline 2\n").as_str())
    );
    assert!(filed_aar(&repo, winner)["order_id"] == json!(winner));
    assert_eq!(
        show_main(&repo, &format!(".garrison/orders/{loser}/aar.json")),
        None,
        "the conflicting order left records in the mainline"
    );
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "the theater checkout is not clean"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structural_failure_is_never_retried() {
    let h = Harness::start(|data, _| {
        let mut s = settings(data, &[]);
        s.workers = 0;
        s.lease = Duration::from_secs(60);
        s
    });
    let mut plan = json!({"orders": [
        order("wrong_aar", "noop", &[], &[]),
        order("no_aar", "noop", &[], &[]),
        order("transient", "noop", &[], &[]),
    ]});
    for o in plan["orders"].as_array_mut().unwrap() {
        o["constraints"] = json!({"max_retries": 2});
    }
    let (run_id, orders) = h.launch(plan).await;

    let mut jobs = std::collections::BTreeMap::new();
    for unit in ["u1", "u2", "u3"] {
        let job = h
            .orch
            .claim(unit, None)
            .await
            .unwrap()
            .expect("an order to claim");
        jobs.insert(job.message.order_id.clone(), job);
    }
    assert!(h.orch.claim("u4", None).await.unwrap().is_none());

    let report = |order_id: &str, outcome: UnitOutcome, aar: Option<Value>| Report {
        order_id: order_id.to_string(),
        lease_token: jobs[order_id].lease_token.clone(),
        outcome,
        summary: "done".into(),
        artifacts: Vec::new(),
        aar,
        result: None,
        commit_sha: None,
    };
    let aar_for = |order_id: &str| {
        json!({
            "order_id": order_id,
            "status": "completed",
            "completed_at": "2026-01-01T00:00:00Z",
            "summary": "done",
            "artifacts": [{"path": "outputs/stdout.txt", "type": "text/plain"}],
            "model": {"provider": "command", "name": "sh"},
        })
    };

    // A well-formed AAR for another order, and no AAR at all: both
    // structural, so they fail at once despite the retries left.
    let wrong = &orders["wrong_aar"].order_id;
    let none = &orders["no_aar"].order_id;
    let cases = [(wrong, Some(aar_for("some-other-order"))), (none, None)];
    for (id, aar) in cases {
        let done = h
            .orch
            .report(report(id, UnitOutcome::Succeeded, aar))
            .await
            .unwrap();
        assert_eq!(done.status, "FAILED", "order {id}");
        assert!(!done.reissued, "order {id} was reissued");
        h.orch.after_report(&done).await.unwrap();
        let snap = h.assert_status(id, OrderStatus::Failed).await;
        assert_eq!(snap.attempt, 1);
        let failed = h.one_event(id, EventType::OrderFailed).await;
        assert_eq!(
            failed.payload["code"],
            json!("SCHEMA_INVALID"),
            "order {id}"
        );
        assert!(h.events(id, EventType::OrderReissued).await.is_empty());
    }
    assert!(
        h.one_event(wrong, EventType::OrderFailed).await.payload["reason"]
            .as_str()
            .is_some_and(|r| r.contains("some-other-order")),
        "the failure does not say whose AAR it was"
    );

    // The same retry budget does reissue a transient failure.
    let transient = &orders["transient"].order_id;
    let done = h
        .orch
        .report(report(
            transient,
            UnitOutcome::Failed {
                reason: "exit status 1".into(),
            },
            None,
        ))
        .await
        .unwrap();
    assert!(done.reissued, "a transient failure was not reissued");
    h.one_event(transient, EventType::OrderReissued).await;
    assert_eq!(h.order(transient).await.attempt, 2);

    // Nothing but the reissued order is claimable again.
    let again = h
        .orch
        .claim("u5", None)
        .await
        .unwrap()
        .expect("the reissue");
    assert_eq!(&again.message.order_id, transient);
    assert_eq!(again.message.attempt, 2);
    assert!(h.orch.claim("u6", None).await.unwrap().is_none());
    assert_eq!(
        h.orch.run_view(&run_id).await.unwrap().run.status,
        RunStatus::Open
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_the_queue() {
    let configure = |data: &Path, lease: Duration| {
        let mut s = settings(data, &[("write", sh("echo done > done.txt"))]);
        s.workers = 0;
        s.lease = lease;
        s
    };
    // A long lease before the restart, so no patrol there reissues the claim.
    let h = Harness::start(|data, _| configure(data, Duration::from_secs(60)));
    let (run_id, orders) = h
        .launch(json!({"orders": [
            order("a", "write", &[], &["docs/a"]),
            order("b", "write", &[], &["docs/b"]),
            order("c", "write", &["a"], &[]),
        ]}))
        .await;
    let enqueued = h
        .run_events(&run_id)
        .await
        .into_iter()
        .filter(|e| e.event_type == EventType::OrderEnqueued)
        .count();
    assert_eq!(enqueued, 2, "a and b are ready, c waits for a");
    assert_eq!(h.orch.queue.depth(), enqueued);
    // One order is claimed (and started) when the process goes away.
    let held = h.orch.claim("gone", None).await.unwrap().expect("a claim");
    assert_eq!(held.message.order_id, orders["a"].order_id);
    assert_eq!(h.orch.queue.depth(), 1);
    let data_dir = h.data_dir();
    let tmp = h.stop().await;

    let orch = Orchestrator::new(
        open_ledger(&data_dir),
        configure(&data_dir, Duration::from_secs(1)),
    );
    assert_eq!(orch.queue.depth(), 0);
    let stats = orch.restore().await.unwrap();
    assert_eq!(stats.open_runs, 1);
    assert_eq!(stats.ready, 1);
    assert_eq!(stats.claimed, 1);
    assert_eq!(orch.queue.depth(), 1);
    assert_eq!(orch.queue.active_count(), 1);

    let job = orch
        .claim("u", None)
        .await
        .unwrap()
        .expect("a claim after restart");
    assert_eq!(job.message.order_id, orders["b"].order_id);
    assert_eq!(job.message.attempt, 1);
    assert!(orch.claim("u2", None).await.unwrap().is_none());

    // The claim that died with the old process is reissued once its lease
    // (restored as one full lease) runs out.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        orch.heartbeat(&job.message.order_id, &job.lease_token)
            .await
            .unwrap(),
        "b's lease should still be held"
    );
    let patrol = orch.duty_patrol().await.unwrap();
    assert_eq!(patrol.reissued, vec![orders["a"].order_id.clone()]);
    let retry = orch.claim("u3", None).await.unwrap().expect("the reissue");
    assert_eq!(retry.message.order_id, orders["a"].order_id);
    assert_eq!(retry.message.attempt, 2);

    orch.ledger.close().await.unwrap();
    drop(orch);
    drop(tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_a_run_stopped_between_integration_and_advance() {
    let configure = |data: &Path, workers: usize| {
        let mut s = settings(
            data,
            &[
                ("first", sh("echo first > first.txt")),
                (
                    "second",
                    sh("test -f first.txt && echo second > second.txt"),
                ),
            ],
        );
        s.workers = workers;
        s.lease = Duration::from_secs(60);
        s
    };
    let h = Harness::start(|data, _| configure(data, 0));
    let (run_id, orders) = h
        .launch(json!({"orders": [
            order("first", "first", &[], &[]),
            order("second", "second", &["first"], &[]),
        ]}))
        .await;
    let first = &orders["first"].order_id;
    let second = &orders["second"].order_id;

    // The worker pipeline for `first`, up to its integration; the process
    // stops before the run is advanced.
    let job = h.orch.claim("w", None).await.unwrap().expect("first");
    assert_eq!(&job.message.order_id, first);
    let report = garrison_orchestration::execute(
        &job,
        garrison_orchestration::UnitEnv {
            data_dir: None,
            secrets: &Default::default(),
            sandbox: &Default::default(),
        },
        || async { true },
    )
    .await;
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    let done = h.orch.report(report).await.unwrap();
    assert_eq!(done.status, "COMPLETED");
    let outcome = h.orch.integrate(first, None).await.unwrap();
    assert!(
        matches!(
            outcome,
            garrison_orchestration::IntegrationOutcome::Integrated { .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        h.order(second).await.last_event_type,
        EventType::OrderCreated
    );
    let data_dir = h.data_dir();
    let tmp = h.stop().await;

    // A new process: restore, workers and patrols as `serve` runs them.
    let orch = Orchestrator::new(open_ledger(&data_dir), configure(&data_dir, 2));
    orch.restore().await.unwrap();
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let handles = garrison_orchestration::spawn_workers(orch.clone(), rx);
    let run = orch
        .wait_run(&run_id, Duration::from_secs(10))
        .await
        .unwrap();
    let second_status = orch
        .ledger
        .order_snapshot(second)
        .await
        .unwrap()
        .map(|o| o.status);
    let _ = shutdown.send(true);
    for h in handles {
        tokio::time::timeout(Duration::from_secs(40), h)
            .await
            .expect("a worker did not stop")
            .unwrap();
    }
    orch.ledger.close().await.unwrap();
    drop(tmp);
    assert_eq!(
        run.status,
        RunStatus::Complete,
        "after the restart the run stayed {:?}; `second` is {second_status:?} \
         (its dependency was integrated before the restart)",
        run.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_limits_from_the_settings_bind_units() {
    // 3 MB written: fine under the default 1 GiB per file, fatal under 1 MB.
    let write = sh("head -c 3000000 /dev/zero > big.bin && echo wrote");
    for (limit, want) in [
        (None, OrderStatus::Completed),
        (Some(1 << 20), OrderStatus::Failed),
    ] {
        let h = Harness::start(|data, _| {
            let mut s = settings(data, &[("write", write.clone())]);
            s.max_retries = 0;
            if let Some(bytes) = limit {
                s.sandbox.limits.file_size_bytes = Some(bytes);
            }
            s
        });
        let plan = json!({"orders": [order("w", "write", &[], &[])]});
        let (run_id, orders) = h.launch(plan).await;
        let status = if want == OrderStatus::Completed {
            RunStatus::Complete
        } else {
            RunStatus::Failed
        };
        h.finish(&run_id, status).await;
        let o = h.assert_status(&orders["w"].order_id, want).await;
        if limit.is_some() {
            let reason = o.reason.unwrap_or_default();
            // SIGXFSZ kills `head`; the shell reports it.
            assert!(reason.contains("exit status"), "{reason}");
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_cannot_start_is_not_retried() {
    let missing = UnitProfile::Command {
        program: "/nonexistent/garrison-unit".into(),
        args: Vec::new(),
        prompt: PromptMode::Stdin,
        env: Default::default(),
        sandbox: Default::default(),
    };
    let h = Harness::start(|data, _| {
        let mut s = settings(data, &[("missing", missing.clone())]);
        s.max_retries = 3;
        s
    });
    let plan = json!({"orders": [order("m", "missing", &[], &[])]});
    let (run_id, orders) = h.launch(plan).await;
    h.finish(&run_id, RunStatus::Failed).await;
    let o = h
        .assert_status(&orders["m"].order_id, OrderStatus::Failed)
        .await;
    let reason = o.reason.unwrap_or_default();
    assert!(reason.starts_with("SPAWN_FAILED: "), "{reason}");
    assert_eq!(o.attempt, 1, "a spawn failure was retried: {reason}");
    h.stop().await;
}
