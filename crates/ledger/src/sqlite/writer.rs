//! The single writer thread and its group commit.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};

use super::rows;
use crate::error::{LedgerError, Result};
use crate::event::{Appended, NewEvent, Record};
use crate::lease::{self, LeaseOp, MemRows};
use crate::projection::{self, OrderSnapshot, RunSnapshot};
use crate::staging::{self, Lookup, Staged};
use crate::store::RebuildStats;

/// Most appends folded into one transaction.
const MAX_GROUP: usize = 2048;

pub(super) enum Command {
    Append {
        events: Vec<NewEvent>,
        lease: Option<LeaseOp>,
        reply: oneshot::Sender<Result<Vec<Appended>>>,
    },
    Rebuild {
        reply: oneshot::Sender<Result<RebuildStats>>,
    },
    DeadLetter {
        mailbox: String,
        entry: String,
        keep: usize,
        reply: oneshot::Sender<Result<()>>,
    },
}

type AppendJob = (
    Vec<NewEvent>,
    Option<LeaseOp>,
    oneshot::Sender<Result<Vec<Appended>>>,
);

/// How long a group waits for stragglers. Writers that were just acknowledged
/// need a moment to submit their next append; without this wait the group
/// after a large one would start with whoever was quickest and commit (and
/// fsync) nearly alone.
const GATHER_WINDOW: Duration = Duration::from_micros(300);

/// Longest pause between two arrivals the gathering waits out. Writers in
/// this process resubmit in a burst, microseconds apart; callers behind
/// HTTP come back a round trip later, and holding a whole window for them
/// delays everyone already in the group (measured: remote dispatch lost
/// about a tenth of its throughput to the full window).
const STRAGGLER_GAP: Duration = Duration::from_micros(50);

pub(super) fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Command>,
    notify: broadcast::Sender<Arc<Record>>,
    leases: MemRows,
) {
    let mut pending: Option<Command> = None;
    let mut cache = Staged::default();
    // The group layer, kept across groups so its tables are not regrown
    // (and their memory faulted in afresh) for every group.
    let mut staged = Staged::default();
    let mut head: Option<i64> = None;
    // Size of the previous group: the concurrency the next one should expect.
    let mut expect = 1usize;
    loop {
        let first = match pending.take() {
            Some(c) => c,
            None => match rx.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        match first {
            Command::Rebuild { reply } => {
                cache.clear();
                let _ = reply.send(rebuild(&mut conn));
            }
            Command::DeadLetter {
                mailbox,
                entry,
                keep,
                reply,
            } => {
                let _ = reply.send(push_dead_letter(&mut conn, &mailbox, &entry, keep));
            }
            Command::Append {
                events,
                lease,
                reply,
            } => {
                let mut group: Vec<AppendJob> = vec![(events, lease, reply)];
                let deadline = Instant::now() + GATHER_WINDOW;
                while group.len() < MAX_GROUP {
                    let next = match rx.try_recv() {
                        Ok(c) => Ok(c),
                        Err(_) if group.len() < expect => {
                            let left = deadline.saturating_duration_since(Instant::now());
                            rx.recv_timeout(left.min(STRAGGLER_GAP))
                        }
                        Err(_) => Err(RecvTimeoutError::Timeout),
                    };
                    match next {
                        Ok(Command::Append {
                            events,
                            lease,
                            reply,
                        }) => group.push((events, lease, reply)),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                expect = group.len();
                commit_group(
                    &mut conn,
                    &mut cache,
                    &mut staged,
                    &mut head,
                    group,
                    &notify,
                    &leases,
                );
            }
        }
    }
    // Fold the WAL back so a closed ledger is one file again.
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

/// Committed state the writer has seen. This process is the store's only
/// writer (the lock file), so entries stay exact; the cache is dropped when it
/// grows past `CACHE_LIMIT` entries and refilled from the store on demand.
const CACHE_LIMIT: usize = 200_000;

/// One transaction for the whole group. Each batch is checked and projected in
/// memory first and only then inserted, so a rejected batch writes nothing
/// and needs no savepoint; `seq` is assigned here (head + 1) since this thread
/// is the only writer.
fn commit_group(
    conn: &mut Connection,
    cache: &mut Staged,
    staged: &mut Staged,
    head: &mut Option<i64>,
    group: Vec<AppendJob>,
    notify: &broadcast::Sender<Arc<Record>>,
    leases: &MemRows,
) {
    let now = crate::format_ts(jiff::Timestamp::now());
    staged.clear();
    let mut outcomes = Vec::with_capacity(group.len());
    // The group checks its lease ops against a copy of the rows and applies
    // the outcome after the commit. Only this thread grants, holds and ends
    // leases, so the copy stays true meanwhile, and the rows are not locked
    // across the commit (callers of `lease` and heartbeats would block on
    // it). The exception is a reap, whose check ("lapsed") a heartbeat could
    // falsify meanwhile: a group with one holds the rows until it is applied,
    // so a heartbeat cannot revive a lease being reaped.
    let lease_work = group.iter().any(|(_, op, _)| op.is_some());
    let reaps = group
        .iter()
        .any(|(_, op, _)| matches!(op, Some(LeaseOp::Reap { .. })));
    let lock_rows = || leases.lock().unwrap_or_else(|p| p.into_inner());
    let mut lease_guard = reaps.then(lock_rows);
    let mut table = match (&lease_guard, lease_work) {
        (Some(rows), _) => lease::Table::new(rows.values().cloned()),
        (None, true) => lease::Table::new(lock_rows().values().cloned()),
        (None, false) => lease::Table::default(),
    };
    let now_ms = lease::monotonic_ms();
    let committed: Result<i64> = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut next = match *head {
            Some(h) => h,
            None => rows::head(&tx)?,
        };
        for (events, op, reply) in group {
            let checked = match &op {
                Some(op) => table.check(op, now_ms),
                None => Ok(()),
            }
            .and_then(|()| {
                staging::check_batch(&mut TxLookup(&tx), [staged, cache], events, &now, next)
            });
            let result = match checked {
                Ok((appended, mut batch)) => {
                    for a in appended.iter().filter(|a| !a.duplicate) {
                        rows::insert_event(&tx, &a.record)?;
                        next = a.record.seq;
                    }
                    staged.absorb(&mut batch);
                    if let Some(op) = &op {
                        let version = lease::version_after(&appended, op.order_id()).unwrap_or(0);
                        table.apply(op, version, now_ms);
                    }
                    Ok(appended)
                }
                Err(e) => Err(e),
            };
            outcomes.push((reply, result));
        }
        for r in staged.runs.values() {
            rows::put_run(&tx, r)?;
        }
        for o in staged.orders.values() {
            rows::put_order(&tx, o)?;
        }
        tx.commit()?;
        Ok(next)
    })();
    match committed {
        Ok(next) => {
            *head = Some(next);
            match lease_guard.as_mut() {
                Some(rows) => lease::apply_changes(rows, table.changes()),
                None if lease_work => lease::apply_changes(&mut lock_rows(), table.changes()),
                None => {}
            }
            drop(lease_guard);
        }
        Err(e) => {
            // The transaction rolled back; forget anything derived from it.
            *head = None;
            let msg = format!("commit failed: {e}");
            for (reply, _) in outcomes {
                let _ = reply.send(Err(LedgerError::Storage(msg.clone())));
            }
            return;
        }
    }
    staged.events.clear(); // the store answers for stored events
    cache.absorb(staged);
    if cache.len() > CACHE_LIMIT {
        cache.clear();
    }
    for (reply, result) in outcomes {
        if let Ok(appended) = &result {
            for a in appended.iter().filter(|a| !a.duplicate) {
                let _ = notify.send(Arc::new(a.record.clone()));
            }
        }
        let _ = reply.send(result);
    }
}

/// Reads committed state straight from the writer's transaction.
struct TxLookup<'a>(&'a Connection);

impl Lookup for TxLookup<'_> {
    fn event(&mut self, event_id: &str) -> Result<Option<Record>> {
        rows::get_event(self.0, event_id)
    }
    fn stream_version(&mut self, stream: &str) -> Result<i64> {
        rows::stream_version(self.0, stream)
    }
    fn run(&mut self, run_id: &str) -> Result<Option<RunSnapshot>> {
        rows::run_snapshot(self.0, run_id)
    }
    fn order(&mut self, order_id: &str) -> Result<Option<OrderSnapshot>> {
        rows::order_snapshot(self.0, order_id)
    }
}

fn push_dead_letter(conn: &mut Connection, mailbox: &str, entry: &str, keep: usize) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    rows::push_dead_letter(&tx, mailbox, entry, keep)?;
    tx.commit()?;
    Ok(())
}

fn rebuild(conn: &mut Connection) -> Result<RebuildStats> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut runs: HashMap<String, RunSnapshot> = HashMap::new();
    let mut orders: HashMap<String, OrderSnapshot> = HashMap::new();
    let mut events = 0u64;
    {
        let mut stmt = tx.prepare(&format!(
            "SELECT {} FROM events ORDER BY seq",
            rows::RECORD_COLUMNS
        ))?;
        let mut cursor = stmt.query([])?;
        while let Some(row) = cursor.next()? {
            let rec = rows::finish(rows::raw_record(row)?)?;
            projection::replay(&mut runs, &mut orders, &rec)?;
            events += 1;
        }
    }
    tx.execute("DELETE FROM run_snapshots", [])?;
    tx.execute("DELETE FROM order_snapshots", [])?;
    for r in runs.values() {
        rows::put_run(&tx, r)?;
    }
    for o in orders.values() {
        rows::put_order(&tx, o)?;
    }
    tx.commit()?;
    Ok(RebuildStats {
        events,
        runs: runs.len() as u64,
        orders: orders.len() as u64,
    })
}
