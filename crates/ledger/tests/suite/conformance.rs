//! One behavioural suite for every ledger backend (docs/interface.md "Core model").

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use garrison_contracts::ironclaw::{EventType, OrderStatus, RunStatus};
use garrison_ledger::{Ledger, LedgerError, NewEvent, Query, tail};
use serde_json::json;

use super::common::Backend;

crate::conformance!(
    append_read_and_filters,
    idempotent_replay_returns_the_original,
    concurrent_replays_store_one_event,
    compare_and_append_has_one_winner_per_version,
    batch_is_atomic,
    illegal_transition_appends_nothing,
    projections_follow_the_lifecycle,
    rebuild_gives_identical_snapshots,
    subscribers_see_every_commit_in_order,
    events_and_snapshots_survive_reopen,
    close_flushes_acknowledged_appends,
    newest_first_reads_the_latest,
    order_reads_include_events_filed_in_other_streams,
    dead_letters_are_bounded_newest_first_and_durable,
);

fn run_created(run: &str) -> NewEvent {
    NewEvent::new(EventType::RunCreated)
        .theater("demo")
        .run(run)
        .payload(json!({"objective": format!("objective of {run}")}))
}

fn order_event(t: EventType, run: &str, order: &str) -> NewEvent {
    NewEvent::new(t).theater("demo").run(run).order(order)
}

async fn append_read_and_filters(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("r1")).await.unwrap();
    l.append(order_event(EventType::OrderCreated, "r1", "o1"))
        .await
        .unwrap();
    l.append(order_event(EventType::OrderCreated, "r1", "o2"))
        .await
        .unwrap();
    l.append(run_created("r2")).await.unwrap();
    l.append(NewEvent::new(EventType::PatrolTick))
        .await
        .unwrap();

    let all = l.read(&Query::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq strictly increasing"
    );
    assert_eq!(l.head().await.unwrap(), all[4].seq);

    let r1 = l
        .read(&Query {
            run_id: Some("r1".into()),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(r1.len(), 3);
    let o2 = l
        .read(&Query {
            order_id: Some("o2".into()),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(o2.len(), 1);
    assert_eq!(o2[0].stream, "order:o2");
    assert_eq!(o2[0].stream_version, 1);
    let created = l
        .read(&Query {
            event_type: Some(EventType::OrderCreated),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    let after = l
        .read(&Query {
            after_seq: Some(all[2].seq),
            limit: Some(1),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, all[3].seq);
    assert_eq!(l.stream_version("run:r1").await.unwrap(), 1);
    assert_eq!(l.stream_version("nope").await.unwrap(), 0);
    assert!(l.get(&all[0].event_id).await.unwrap().is_some());
    l.close().await.unwrap();
}

async fn idempotent_replay_returns_the_original(b: &Backend) {
    let l = b.open().await;
    let first = l.append(run_created("r").event_id("evt-1")).await.unwrap();
    assert!(!first.duplicate);
    let again = l
        .append(
            run_created("r")
                .event_id("evt-1")
                .payload(json!({"objective": "changed"})),
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(
        again.record, first.record,
        "a replay reports the original record"
    );
    // A replay inside a batch is a no-op too, while the new event lands.
    let batch = l
        .append_batch(vec![
            run_created("r").event_id("evt-1"),
            order_event(EventType::OrderCreated, "r", "o").event_id("evt-2"),
        ])
        .await
        .unwrap();
    assert!(batch[0].duplicate && !batch[1].duplicate);
    // Replaying a status change that would now be illegal is still just a replay.
    l.append(order_event(EventType::OrderClaimed, "r", "o").event_id("evt-3"))
        .await
        .unwrap();
    l.append(order_event(EventType::OrderStarted, "r", "o").event_id("evt-4"))
        .await
        .unwrap();
    let replay = l
        .append(order_event(EventType::OrderClaimed, "r", "o").event_id("evt-3"))
        .await;
    assert!(replay.unwrap().duplicate);
    assert_eq!(l.read(&Query::default()).await.unwrap().len(), 4);
    assert_eq!(
        l.run_snapshot("r")
            .await
            .unwrap()
            .unwrap()
            .objective
            .as_deref(),
        Some("objective of r")
    );
    l.close().await.unwrap();
}

async fn concurrent_replays_store_one_event(b: &Backend) {
    let l = b.open().await;
    // Within one batch.
    let twice = l
        .append_batch(vec![
            run_created("r").event_id("same"),
            run_created("r").event_id("same"),
        ])
        .await
        .unwrap();
    assert!(!twice[0].duplicate && twice[1].duplicate);
    assert_eq!(twice[0].record, twice[1].record);
    // Across batches racing into the same group commits.
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move {
                l.append(
                    NewEvent::new(EventType::PatrolTick)
                        .event_id("contended")
                        .payload(json!({ "sender": i })),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut originals = 0;
    let mut records = HashSet::new();
    for h in handles {
        let a = h.await.unwrap();
        originals += usize::from(!a.duplicate);
        records.insert(a.record.seq);
    }
    assert_eq!(originals, 1, "exactly one append stores the event");
    assert_eq!(records.len(), 1, "every caller sees the same record");
    assert_eq!(l.read(&Query::default()).await.unwrap().len(), 2);
    l.close().await.unwrap();
}

async fn compare_and_append_has_one_winner_per_version(b: &Backend) {
    let l = b.open().await;
    const TASKS: usize = 24;
    const ROUNDS: usize = 8;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let l = l.clone();
        handles.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            let mut conflicts = 0;
            for i in 0..ROUNDS {
                let seen = l.stream_version("claims").await.unwrap();
                let ev = NewEvent::new(EventType::PatrolTick)
                    .in_stream("claims")
                    .expect_version(seen)
                    .payload(json!({"task": t, "round": i}));
                match l.append(ev).await {
                    Ok(a) => wins.push(a.record.stream_version),
                    Err(LedgerError::ConcurrencyConflict { .. }) => conflicts += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            (wins, conflicts)
        }));
    }
    let mut versions = Vec::new();
    let mut conflicts = 0;
    for h in handles {
        let (w, c) = h.await.unwrap();
        versions.extend(w);
        conflicts += c;
    }
    let total = versions.len();
    let unique: HashSet<i64> = versions.iter().copied().collect();
    assert_eq!(unique.len(), total, "two appends won the same version");
    assert_eq!(total + conflicts, TASKS * ROUNDS);
    let head_version = l.stream_version("claims").await.unwrap();
    assert_eq!(head_version as usize, total);
    assert_eq!(
        unique,
        (1..=head_version).collect::<HashSet<_>>(),
        "versions are gap-free"
    );
    assert!(conflicts > 0, "the race never happened; raise TASKS");
    l.close().await.unwrap();
}

async fn batch_is_atomic(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("r")).await.unwrap();
    let head = l.head().await.unwrap();
    let err = l
        .append_batch(vec![
            order_event(EventType::OrderCreated, "r", "o"),
            order_event(EventType::OrderClaimed, "r", "o"),
            order_event(EventType::OrderCreated, "r", "o"), // already exists
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert_eq!(
        l.head().await.unwrap(),
        head,
        "nothing of the failed batch is stored"
    );
    assert!(l.order_snapshot("o").await.unwrap().is_none());
    // A stale expected version in the middle sinks the batch too.
    let err = l
        .append_batch(vec![
            order_event(EventType::OrderCreated, "r", "o"),
            order_event(EventType::OrderClaimed, "r", "o").expect_version(0),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONCURRENCY_CONFLICT");
    assert_eq!(l.head().await.unwrap(), head);
    // Concurrent good batches are unaffected by a failing neighbour.
    let good = l.append_batch(vec![
        order_event(EventType::OrderCreated, "r", "o"),
        order_event(EventType::OrderClaimed, "r", "o").expect_version(1),
    ]);
    let bad = l.append(order_event(EventType::OrderCompleted, "r", "missing"));
    let (good, bad) = tokio::join!(good, bad);
    assert_eq!(good.unwrap().len(), 2);
    assert_eq!(bad.unwrap_err().code(), "INVALID_TRANSITION");
    assert_eq!(l.head().await.unwrap(), head + 2);
    l.close().await.unwrap();
}

async fn illegal_transition_appends_nothing(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("r")).await.unwrap();
    l.append(order_event(EventType::OrderCreated, "r", "o"))
        .await
        .unwrap();
    let before = l.order_snapshot("o").await.unwrap();
    let head = l.head().await.unwrap();
    let err = l
        .append(order_event(EventType::OrderCompleted, "r", "o"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    assert_eq!(l.head().await.unwrap(), head);
    assert_eq!(l.order_snapshot("o").await.unwrap(), before);
    // Terminal states only re-assert themselves.
    for t in [
        EventType::OrderClaimed,
        EventType::OrderStarted,
        EventType::OrderCompleted,
    ] {
        l.append(order_event(t, "r", "o")).await.unwrap();
    }
    l.append(order_event(EventType::OrderCompleted, "r", "o"))
        .await
        .unwrap();
    let err = l
        .append(order_event(EventType::OrderFailed, "r", "o"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    // So do runs.
    l.append(NewEvent::new(EventType::RunFailed).run("r"))
        .await
        .unwrap();
    let err = l
        .append(NewEvent::new(EventType::RunCompleted).run("r"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_TRANSITION");
    // The contract's typo spellings parse to the canonical types.
    let ev: NewEvent = serde_json::from_value(json!({
        "type": "ORDER CLAIMED", "run_id": "r", "order_id": "o2"
    }))
    .unwrap();
    assert_eq!(ev.event_type, EventType::OrderClaimed);
    l.close().await.unwrap();
}

async fn projections_follow_the_lifecycle(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("r")).await.unwrap();
    for o in ["a", "b"] {
        l.append(
            order_event(EventType::OrderCreated, "r", o)
                .payload(json!({"objective": o, "lock_scope": [format!("src/{o}")]})),
        )
        .await
        .unwrap();
    }
    let steps = [
        order_event(EventType::OrderClaimed, "r", "a").unit("unit-1"),
        order_event(EventType::OrderStarted, "r", "a").unit("unit-1"),
        order_event(EventType::WorktreeCreated, "r", "a")
            .payload(json!({"worktree_path": "/w/a", "branch": "order_a"})),
        order_event(EventType::ArtifactWritten, "r", "a")
            .payload(json!({"path": "outputs/out.txt", "type": "text/plain"})),
        order_event(EventType::AarWritten, "r", "a").payload(json!({"path": "aar.json"})),
        order_event(EventType::OrderCompleted, "r", "a"),
        order_event(EventType::Integrated, "r", "a").payload(json!({"commit_sha": "abc123"})),
        order_event(EventType::OrderBlocked, "r", "b")
            .payload(json!({"reason": "DEPENDENCY_NOT_MET"})),
        NewEvent::new(EventType::RunCompleted)
            .run("r")
            .payload(json!({"summary": "all done"})),
    ];
    for s in steps {
        l.append(s).await.unwrap();
    }
    let a = l.order_snapshot("a").await.unwrap().unwrap();
    assert_eq!(a.status, OrderStatus::Completed);
    assert_eq!(a.unit_id.as_deref(), Some("unit-1"));
    assert_eq!(a.worktree_path.as_deref(), Some("/w/a"));
    assert_eq!(a.artifacts.len(), 1);
    assert_eq!(a.aar, Some(json!({"path": "aar.json"})));
    assert_eq!(a.commit_sha.as_deref(), Some("abc123"));
    assert_eq!(a.lock_scope, vec!["src/a".to_string()]);
    let bsnap = l.order_snapshot("b").await.unwrap().unwrap();
    assert_eq!(bsnap.status, OrderStatus::Blocked);
    assert_eq!(bsnap.reason.as_deref(), Some("DEPENDENCY_NOT_MET"));
    let run = l.run_snapshot("r").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Complete);
    assert_eq!(run.summary.as_deref(), Some("all done"));
    let orders = l.run_orders("r").await.unwrap();
    let counts: BTreeMap<_, _> = garrison_ledger::order_counts(&orders)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([("BLOCKED".into(), 1), ("COMPLETED".into(), 1)])
    );
    assert_eq!(
        orders
            .iter()
            .map(|o| o.order_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    // Reissue after a block counts attempts.
    l.append(order_event(EventType::OrderReissued, "r", "b"))
        .await
        .unwrap();
    assert_eq!(l.order_snapshot("b").await.unwrap().unwrap().attempt, 2);
    l.close().await.unwrap();
}

async fn rebuild_gives_identical_snapshots(b: &Backend) {
    let l = b.open().await;
    let mut ids = Vec::new();
    for r in 0..5 {
        let run = format!("run-{r}");
        l.append(run_created(&run)).await.unwrap();
        for o in 0..6 {
            let order = format!("{run}-o{o}");
            l.append(order_event(EventType::OrderCreated, &run, &order))
                .await
                .unwrap();
            let path: &[EventType] = match o % 3 {
                0 => &[
                    EventType::OrderClaimed,
                    EventType::OrderStarted,
                    EventType::OrderCompleted,
                ],
                1 => &[
                    EventType::OrderBlocked,
                    EventType::OrderReissued,
                    EventType::OrderClaimed,
                ],
                _ => &[EventType::OrderCancelled],
            };
            for t in path {
                l.append(order_event(*t, &run, &order)).await.unwrap();
            }
            l.append(
                order_event(EventType::ArtifactWritten, &run, &order).payload(json!({"path": "x"})),
            )
            .await
            .unwrap();
            ids.push((run.clone(), order));
        }
        if r % 2 == 0 {
            l.append(NewEvent::new(EventType::RunCompleted).run(&run))
                .await
                .unwrap();
        }
    }
    let snapshot = |l: Arc<dyn Ledger>, ids: Vec<(String, String)>| async move {
        let mut out = Vec::new();
        for (run, order) in &ids {
            out.push(serde_json::to_value(l.run_snapshot(run).await.unwrap()).unwrap());
            out.push(serde_json::to_value(l.order_snapshot(order).await.unwrap()).unwrap());
        }
        out
    };
    let before = snapshot(l.clone(), ids.clone()).await;
    let stats = l.rebuild().await.unwrap();
    assert_eq!(stats.runs, 5);
    assert_eq!(stats.orders, 30);
    assert_eq!(
        stats.events as i64,
        l.head().await.unwrap_or_default().min(stats.events as i64)
    );
    let after = snapshot(l.clone(), ids).await;
    assert_eq!(before, after);
    l.close().await.unwrap();
}

async fn subscribers_see_every_commit_in_order(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("backlog")).await.unwrap();
    let mut live = l.subscribe();
    let follower = tail::follow(l.clone(), 0);
    tokio::pin!(follower);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    l.append(NewEvent::new(EventType::PatrolTick).payload(json!({"w": i, "j": j})))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut last = 0;
    for _ in 0..80 {
        let rec = tokio::time::timeout(std::time::Duration::from_secs(10), live.recv())
            .await
            .expect("notified in time")
            .unwrap();
        assert!(rec.seq > last);
        last = rec.seq;
    }
    let mut seen = Vec::new();
    while seen.len() < 81 {
        let rec = tokio::time::timeout(std::time::Duration::from_secs(10), follower.next())
            .await
            .expect("followed in time")
            .unwrap()
            .unwrap();
        seen.push(rec.seq);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(seen.last().copied(), Some(l.head().await.unwrap()));
    l.close().await.unwrap();
}

async fn events_and_snapshots_survive_reopen(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("r")).await.unwrap();
    l.append(order_event(EventType::OrderCreated, "r", "o").event_id("keep-me"))
        .await
        .unwrap();
    let snap = l.order_snapshot("o").await.unwrap();
    l.close().await.unwrap();
    drop(l);
    let l = b.open().await;
    assert_eq!(l.order_snapshot("o").await.unwrap(), snap);
    assert!(
        l.append(order_event(EventType::OrderCreated, "r", "o").event_id("keep-me"))
            .await
            .unwrap()
            .duplicate
    );
    assert_eq!(l.read(&Query::default()).await.unwrap().len(), 2);
    l.close().await.unwrap();
}

async fn close_flushes_acknowledged_appends(b: &Backend) {
    let l = b.open().await;
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move {
                l.append(NewEvent::new(EventType::PatrolTick).event_id(format!("flush-{i}")))
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    l.close().await.unwrap();
    let mut acked = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(a) => acked.push(a.record.event_id),
            Err(e) => assert_eq!(e.code(), "LEDGER_UNAVAILABLE", "only Closed may fail: {e}"),
        }
    }
    drop(l);
    let l = b.open().await;
    for id in &acked {
        assert!(
            l.get(id).await.unwrap().is_some(),
            "acknowledged {id} was lost"
        );
    }
    l.close().await.unwrap();
}

/// The embedded store belongs to one process at a time, until it is closed.
#[tokio::test]
async fn sqlite_lock_is_exclusive_until_close() {
    let backend = Backend::sqlite();
    let first = backend.open().await;
    let Backend::Sqlite { path, .. } = &backend else {
        unreachable!()
    };
    let err = garrison_ledger::sqlite::SqliteLedger::open(path)
        .err()
        .expect("second open refused");
    assert!(err.to_string().contains("in use"), "{err}");
    first.close().await.unwrap();
    // `first` is still alive (as a lingering handle would be), yet the lock is free.
    let second = garrison_ledger::sqlite::SqliteLedger::open(path).unwrap();
    second.close().await.unwrap();
    drop(first);
}

/// An order's events are every event naming it, wherever it was filed: its
/// own stream, another stream, or a stream named after it that an event of
/// another order (or of none) was filed in.
async fn order_reads_include_events_filed_in_other_streams(b: &Backend) {
    let l = b.open().await;
    l.append(run_created("r")).await.unwrap();
    let artifact = |order: &str, stream: &str| {
        NewEvent::new(EventType::ArtifactWritten)
            .run("r")
            .order(order)
            .in_stream(stream)
            .payload(json!({"path": "outputs/x"}))
    };
    let seq = |a: garrison_ledger::Appended| a.record.seq;
    let created = seq(l
        .append(order_event(EventType::OrderCreated, "r", "o1"))
        .await
        .unwrap());
    l.append(order_event(EventType::OrderCreated, "r", "o2"))
        .await
        .unwrap();
    let mut elsewhere = Vec::new();
    for i in 0..3 {
        elsewhere.push(seq(l
            .append(artifact("o1", &format!("custom:{i}")))
            .await
            .unwrap()));
        // Filed in o1's stream but naming another order, or none: not o1's.
        l.append(artifact("o2", "order:o1")).await.unwrap();
        l.append(NewEvent::new(EventType::PatrolTick).in_stream("order:o1"))
            .await
            .unwrap();
    }
    let own = seq(l
        .append(order_event(EventType::ArtifactWritten, "r", "o1").payload(json!({"path": "y"})))
        .await
        .unwrap());
    let read = |newest_first: bool, limit: Option<i64>, event_type: Option<EventType>| {
        let l = l.clone();
        async move {
            l.read(&Query {
                order_id: Some("o1".into()),
                newest_first,
                limit,
                event_type,
                ..Query::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>()
        }
    };
    let mut all = vec![created];
    all.extend(&elsewhere);
    all.push(own);
    assert_eq!(read(false, None, None).await, all);
    assert_eq!(read(true, Some(2), None).await, vec![own, elsewhere[2]]);
    assert_eq!(
        read(false, None, Some(EventType::ArtifactWritten)).await,
        all[1..].to_vec()
    );
    l.close().await.unwrap();
}

async fn newest_first_reads_the_latest(b: &Backend) {
    let l = b.open().await;
    for i in 0..5 {
        l.append(NewEvent::new(EventType::PatrolTick).payload(json!({ "i": i })))
            .await
            .unwrap();
    }
    l.append(run_created("r")).await.unwrap();
    let latest = l
        .read(&Query {
            event_type: Some(EventType::PatrolTick),
            newest_first: true,
            limit: Some(2),
            ..Query::default()
        })
        .await
        .unwrap();
    let is: Vec<_> = latest.iter().map(|r| r.payload["i"].clone()).collect();
    assert_eq!(is, vec![json!(4), json!(3)]);
    l.close().await.unwrap();
}

async fn dead_letters_are_bounded_newest_first_and_durable(b: &Backend) {
    let l = b.open().await;
    let head = l.head().await.unwrap();
    for i in 0..7 {
        l.push_dead_letter("inbox", json!({ "n": i }), 5)
            .await
            .unwrap();
    }
    l.push_dead_letter("other", json!({ "n": 99 }), 5)
        .await
        .unwrap();
    let held = l.dead_letters("inbox", 100).await.unwrap();
    assert_eq!(
        held,
        (2..7).rev().map(|i| json!({ "n": i })).collect::<Vec<_>>()
    );
    assert_eq!(l.dead_letters("inbox", 2).await.unwrap().len(), 2);
    assert_eq!(
        l.head().await.unwrap(),
        head,
        "dead letters never enter the event log"
    );
    l.close().await.unwrap();
    drop(l);
    let l = b.open().await;
    assert_eq!(l.dead_letters("inbox", 100).await.unwrap().len(), 5);
    assert_eq!(
        l.dead_letters("other", 100).await.unwrap(),
        vec![json!({ "n": 99 })]
    );
    l.close().await.unwrap();
}
