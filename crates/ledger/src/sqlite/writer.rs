//! The single writer thread and its group commit.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

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

type Reply = oneshot::Sender<Result<Vec<Appended>>>;
type AppendJob = (Vec<NewEvent>, Option<LeaseOp>, Reply);

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
                let mut group = match Group::begin(&mut conn, &mut cache, &mut staged, &mut head) {
                    Ok(group) => group,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                };
                group.add((events, lease, reply), &leases);
                let deadline = Instant::now() + GATHER_WINDOW;
                while group.len() < MAX_GROUP && group.failure.is_none() {
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
                        }) if !group.must_close_before(lease.as_ref()) => {
                            group.add((events, lease, reply), &leases);
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                expect = group.len();
                group.commit(&notify, &leases);
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

/// One transaction for the whole group, open while the group gathers: each
/// append is checked and inserted as it arrives, so the writer builds the
/// group while the stragglers it waits for are still on their way. A batch is
/// checked and projected in memory before it is inserted, so a rejected batch
/// writes nothing and needs no savepoint; `seq` is assigned here (head + 1)
/// since this thread is the only writer.
struct Group<'a> {
    tx: rusqlite::Transaction<'a>,
    cache: &'a mut Staged,
    /// This group's layer: what its appends changed, not yet committed.
    staged: &'a mut Staged,
    head: &'a mut Option<i64>,
    now: String,
    now_ms: i64,
    /// The last `seq` inserted.
    next: i64,
    leases: Leases<'a>,
    outcomes: Vec<(Reply, Result<Vec<Appended>>)>,
    /// A storage error: the transaction is lost and every append in the
    /// group fails with it.
    failure: Option<LedgerError>,
}

/// The lease rows a group checks its lease ops against: a copy, taken at the
/// group's first lease op. Only the writer grants, holds and ends leases, so
/// the copy stays true until the group applies its outcome after the commit,
/// and the rows are not locked across the commit (callers of `lease` and
/// heartbeats would block on it). The exception is a reap, whose check
/// ("lapsed") a heartbeat could falsify meanwhile: a group whose first lease
/// op is a reap holds the rows from then until the outcome is applied, so a
/// heartbeat cannot revive a lease being reaped (a reap arriving after other
/// lease ops starts the next group).
#[derive(Default)]
struct Leases<'a> {
    table: Option<lease::Table>,
    held: Option<std::sync::MutexGuard<'a, HashMap<String, lease::Row>>>,
}

impl<'a> Group<'a> {
    fn begin(
        conn: &'a mut Connection,
        cache: &'a mut Staged,
        staged: &'a mut Staged,
        head: &'a mut Option<i64>,
    ) -> Result<Self> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next = match *head {
            Some(h) => h,
            None => rows::head(&tx)?,
        };
        staged.clear();
        Ok(Group {
            tx,
            cache,
            staged,
            head,
            now: crate::format_ts(jiff::Timestamp::now()),
            now_ms: lease::monotonic_ms(),
            next,
            leases: Leases::default(),
            outcomes: Vec::new(),
            failure: None,
        })
    }

    fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// A reap cannot join a group that already copied the lease rows without
    /// holding them; it starts the next group instead.
    fn must_close_before(&self, op: Option<&LeaseOp>) -> bool {
        matches!(op, Some(LeaseOp::Reap { .. }))
            && self.leases.table.is_some()
            && self.leases.held.is_none()
    }

    fn add(&mut self, (events, op, reply): AppendJob, rows: &'a MemRows) {
        let result = self.append(events, op.as_ref(), rows);
        self.outcomes.push((reply, result));
    }

    fn append(
        &mut self,
        events: Vec<NewEvent>,
        op: Option<&LeaseOp>,
        rows: &'a MemRows,
    ) -> Result<Vec<Appended>> {
        let lock_rows = || rows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(op) = op {
            if self.leases.table.is_none() {
                if matches!(op, LeaseOp::Reap { .. }) {
                    let held = lock_rows();
                    self.leases.table = Some(lease::Table::new(held.values().cloned()));
                    self.leases.held = Some(held);
                } else {
                    self.leases.table = Some(lease::Table::new(lock_rows().values().cloned()));
                }
            }
            if let Some(table) = &self.leases.table {
                table.check(op, self.now_ms)?;
            }
        }
        let (appended, mut batch) = staging::check_batch(
            &mut TxLookup(&self.tx),
            self.staged,
            Some(self.cache),
            events,
            &self.now,
            self.next,
        )?;
        for a in appended.iter().filter(|a| !a.duplicate) {
            if let Err(e) = rows::insert_event(&self.tx, &a.record) {
                // `commit` answers every append of the group with this.
                self.failure = Some(e);
                return Ok(Vec::new());
            }
            self.next = a.record.seq;
        }
        self.staged.absorb(&mut batch);
        if let (Some(op), Some(table)) = (op, &mut self.leases.table) {
            let version = lease::version_after(&appended, op.order_id()).unwrap_or(0);
            table.apply(op, version, self.now_ms);
        }
        Ok(appended)
    }

    /// Writes the group's snapshots, commits, and only then acknowledges.
    fn commit(self, notify: &broadcast::Sender<Arc<Record>>, rows: &MemRows) {
        let Group {
            tx,
            cache,
            staged,
            head,
            next,
            leases,
            outcomes,
            failure,
            ..
        } = self;
        let committed = match failure {
            Some(e) => Err(e),
            None => (|| {
                for r in staged.runs.values() {
                    rows::put_run(&tx, r)?;
                }
                for o in staged.orders.values() {
                    rows::put_order(&tx, o)?;
                }
                tx.commit()?;
                Ok(())
            })(),
        };
        if let Err(e) = committed {
            // The transaction rolled back; forget anything derived from it.
            *head = None;
            let msg = format!("commit failed: {e}");
            for (reply, _) in outcomes {
                let _ = reply.send(Err(LedgerError::Storage(msg.clone())));
            }
            return;
        }
        *head = Some(next);
        if let Some(table) = &leases.table {
            match leases.held {
                Some(mut held) => lease::apply_changes(&mut held, table.changes()),
                None => lease::apply_changes(
                    &mut rows.lock().unwrap_or_else(PoisonError::into_inner),
                    table.changes(),
                ),
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
