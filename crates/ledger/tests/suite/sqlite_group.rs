//! The SQLite writer's group commit when the store refuses a row mid-group:
//! every append gathered into that transaction fails with it, none is
//! acknowledged, and the next group carries on from the last committed `seq`.

use std::sync::Arc;

use garrison_contracts::ironclaw::EventType;
use garrison_ledger::sqlite::SqliteLedger;
use garrison_ledger::{Ledger, LedgerError, NewEvent, Query};

fn run_created(run: &str) -> NewEvent {
    NewEvent::new(EventType::RunCreated).theater("t").run(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_insert_fails_its_whole_group_and_seq_stays_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger: Arc<dyn Ledger> = Arc::new(SqliteLedger::open(&path).unwrap());
    ledger.append(run_created("first")).await.unwrap();

    // Another connection makes the store refuse one run's events, as a full
    // disk or a corrupt page would refuse them: the insert itself fails.
    let side = rusqlite::Connection::open(&path).unwrap();
    side.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.run_id LIKE 'doomed%'
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();

    // Rounds of concurrent appends, a doomed one among them, so that some
    // groups hold good appends gathered after (or before) the refused one.
    let mut acknowledged = Vec::new();
    let mut storage_failures = 0;
    for round in 0..20 {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let ledger = ledger.clone();
                let run = if i == 8 {
                    format!("doomed-{round}")
                } else {
                    format!("r{round}-{i}")
                };
                tokio::spawn(async move { (run.clone(), ledger.append(run_created(&run)).await) })
            })
            .collect();
        for t in tasks {
            let (run, result) = t.await.unwrap();
            match result {
                Ok(a) => {
                    assert!(!run.starts_with("doomed"), "{run} was acknowledged");
                    acknowledged.push((run, a.record.seq));
                }
                Err(LedgerError::Storage(_)) => storage_failures += 1,
                Err(e) => panic!("{run}: unexpected error {e}"),
            }
        }
    }
    assert!(storage_failures >= 20, "every doomed append fails");

    // Every acknowledged append is stored, with its snapshot, at the seq it
    // was given; nothing of a failed group is; and seq has no gap.
    let stored = ledger.read(&Query::default()).await.unwrap();
    let seqs: Vec<i64> = stored.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>());
    assert_eq!(stored.len(), acknowledged.len() + 1);
    for (run, seq) in &acknowledged {
        let rec = stored.iter().find(|r| r.seq == *seq).unwrap();
        assert_eq!(rec.run_id.as_deref(), Some(run.as_str()));
        assert!(ledger.run_snapshot(run).await.unwrap().is_some(), "{run}");
    }
    assert!(
        stored
            .iter()
            .all(|r| !r.run_id.as_deref().unwrap_or("").starts_with("doomed"))
    );

    // With the trigger gone, what failed can be appended again.
    side.execute_batch("DROP TRIGGER refuse").unwrap();
    let again = ledger.append(run_created("doomed-0")).await.unwrap();
    assert_eq!(again.record.seq, stored.len() as i64 + 1);
    ledger.close().await.unwrap();
}
