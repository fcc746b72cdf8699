//! `garrison ledger export|import`: a ledger written to checksummed JSONL and
//! restored into a fresh ledger, on SQLite and (when configured) PostgreSQL,
//! gives the same events, snapshots and dead letters; a damaged file is
//! refused before anything is written.

use std::io::Cursor;
use std::sync::Arc;

use garrison_contracts::ironclaw::EventType;
use garrison_ledger::backup::{self, BackupError};
use garrison_ledger::{Ledger, NewEvent, Query};
use serde_json::json;

use super::common::Backend;

/// Runs of several orders through claim, completion, failure and reissue,
/// enough of them that export and import cross their page boundaries.
async fn populate(l: &dyn Ledger, runs: usize) {
    for r in 0..runs {
        let run = format!("run-{r}");
        let ev = |t: EventType| NewEvent::new(t).theater("t1").run(&run);
        let mut batch = vec![
            ev(EventType::RunCreated)
                .payload(json!({"objective": format!("objective {r}"), "n": 1.5})),
        ];
        for o in 0..4 {
            let order = format!("{run}-o{o}");
            let oe = |t: EventType| ev(t).order(&order);
            batch.push(oe(EventType::OrderCreated).payload(
                json!({"objective": "x", "lock_scope": [format!("src/{o}")], "depends_on": []}),
            ));
            batch.push(oe(EventType::OrderClaimed).unit("u1"));
            batch.push(oe(EventType::OrderStarted).unit("u1"));
            match o {
                0 => batch.push(
                    oe(EventType::OrderFailed).payload(json!({"reason": "ACCEPTANCE_FAILED"})),
                ),
                1 => {
                    batch.push(
                        oe(EventType::OrderBlocked).payload(json!({"reason": "TASK_TIMEOUT"})),
                    );
                    batch.push(oe(EventType::OrderReissued));
                }
                _ => {
                    batch.push(oe(EventType::AarWritten).payload(json!({"path": "aar.json"})));
                    batch.push(oe(EventType::OrderCompleted));
                    batch.push(oe(EventType::Integrated).payload(json!({"commit_sha": "abc"})));
                }
            }
        }
        batch.push(ev(EventType::RunFailed).payload(json!({"summary": "one order failed"})));
        l.append_batch(batch).await.unwrap();
    }
    l.append(NewEvent::new(EventType::PatrolTick))
        .await
        .unwrap();
    for i in 0..3 {
        l.push_dead_letter("milestones", json!({"reason": format!("bad {i}")}), 100)
            .await
            .unwrap();
    }
    l.push_dead_letter("other", json!({"reason": "x"}), 100)
        .await
        .unwrap();
}

async fn export_bytes(l: &dyn Ledger) -> Vec<u8> {
    let mut out = Vec::new();
    backup::export(l, &mut out, |_| {}).await.unwrap();
    out
}

async fn import_bytes(l: &dyn Ledger, bytes: &[u8]) -> Result<backup::BackupStats, BackupError> {
    backup::import(l, || Ok(Cursor::new(bytes.to_vec())), |_| {}).await
}

/// Everything a restore must reproduce.
async fn contents(l: &dyn Ledger) -> serde_json::Value {
    let events = l.read(&Query::default()).await.unwrap();
    let mut runs = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.event_type == EventType::RunCreated)
    {
        let id = e.run_id.clone().unwrap();
        runs.push(json!({
            "run": l.run_snapshot(&id).await.unwrap(),
            "orders": l.run_orders(&id).await.unwrap(),
        }));
    }
    let mut letters = Vec::new();
    for m in l.dead_letter_mailboxes().await.unwrap() {
        letters.push(json!([m.clone(), l.dead_letters(&m, 1000).await.unwrap()]));
    }
    json!({"events": events, "runs": runs, "dead_letters": letters})
}

async fn restore_into(target: &Backend, source: &dyn Ledger) {
    let bytes = export_bytes(source).await;
    let t = target.open().await;
    let stats = import_bytes(t.as_ref(), &bytes).await.unwrap();
    assert_eq!(stats.dead_letters, 4);
    assert_eq!(stats.events, source.head().await.unwrap() as u64);
    assert_eq!(contents(t.as_ref()).await, contents(source).await);
    // The restored ledger exports to the same bytes, header aside.
    let again = export_bytes(t.as_ref()).await;
    let body = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    if t.backend() == source.backend() {
        assert_eq!(body(&again), body(&bytes));
    }
    t.close().await.unwrap();
}

async fn source() -> (Backend, Arc<dyn Ledger>) {
    let b = Backend::sqlite();
    let l = b.open().await;
    // 260 runs × ~23 events: more than two export pages and import batches.
    populate(l.as_ref(), 260).await;
    (b, l)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_export_restores_into_sqlite() {
    let (_b, src) = source().await;
    restore_into(&Backend::sqlite(), src.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_export_restores_into_postgres() {
    let Some(target) = Backend::postgres("backup_restore").await else {
        return;
    };
    let (_b, src) = source().await;
    restore_into(&target, src.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn damaged_files_are_refused_before_any_write() {
    let b = Backend::sqlite();
    let src = b.open().await;
    populate(src.as_ref(), 3).await;
    let bytes = export_bytes(src.as_ref()).await;
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // One changed byte inside an event's payload.
    let flipped = text.replacen("objective 1", "objective 7", 1);
    // The closing line dropped.
    let truncated = lines[..lines.len() - 1].join("\n") + "\n";
    // Two event lines swapped: each line is intact, the order is not.
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let swapped = swapped.join("\n") + "\n";
    // A whole event line removed, the rest intact.
    let mut spliced = lines.clone();
    spliced.remove(5);
    let spliced = spliced.join("\n") + "\n";

    for (name, bad, line) in [
        (
            "flipped",
            flipped,
            Some(
                lines
                    .iter()
                    .position(|l| l.contains("objective 1"))
                    .unwrap()
                    + 1,
            ),
        ),
        ("truncated", truncated, None),
        ("swapped", swapped, None),
        ("spliced", spliced, None),
    ] {
        let target = Backend::sqlite();
        let t = target.open().await;
        let err = import_bytes(t.as_ref(), bad.as_bytes()).await.unwrap_err();
        match (&err, line) {
            (BackupError::Corrupt { line: at, reason }, Some(want)) => {
                assert_eq!(*at, want, "{name}: {reason}");
                assert!(reason.contains("checksum"), "{name}: {reason}");
            }
            (BackupError::Corrupt { .. }, None) => {}
            _ => panic!("{name}: {err}"),
        }
        assert_eq!(t.head().await.unwrap(), 0, "{name}: nothing written");
        assert!(
            t.dead_letter_mailboxes().await.unwrap().is_empty(),
            "{name}"
        );
    }

    // An intact file into a ledger that already holds events.
    let err = import_bytes(src.as_ref(), &bytes).await.unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty { .. }), "{err}");
}
