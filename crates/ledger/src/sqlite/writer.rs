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
use crate::projection::{self, OrderSnapshot, RunSnapshot};
use crate::staging::{self, Staged};
use crate::store::RebuildStats;

/// Most appends folded into one transaction.
const MAX_GROUP: usize = 2048;

pub(super) enum Command {
    Append {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Appended>>>,
    },
    Rebuild {
        reply: oneshot::Sender<Result<RebuildStats>>,
    },
}

type AppendJob = (Vec<NewEvent>, oneshot::Sender<Result<Vec<Appended>>>);

/// How long a group waits for stragglers. Writers that were just acknowledged
/// need a moment to submit their next append; without this wait the group
/// after a large one would start with whoever was quickest and commit (and
/// fsync) nearly alone.
const GATHER_WINDOW: Duration = Duration::from_micros(300);

/// Commits between two background checkpoints.
const CHECKPOINT_EVERY: u32 = 64;

pub(super) fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Command>,
    notify: broadcast::Sender<Arc<Record>>,
    checkpointer: Checkpointer,
) {
    let mut pending: Option<Command> = None;
    let mut cache = Staged::default();
    let mut head: Option<i64> = None;
    let mut commits = 0u32;
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
            Command::Append { events, reply } => {
                let mut group: Vec<AppendJob> = vec![(events, reply)];
                let deadline = Instant::now() + GATHER_WINDOW;
                while group.len() < MAX_GROUP {
                    let next = match rx.try_recv() {
                        Ok(c) => Ok(c),
                        Err(_) if group.len() < expect => {
                            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                        }
                        Err(_) => Err(RecvTimeoutError::Timeout),
                    };
                    match next {
                        Ok(Command::Append { events, reply }) => group.push((events, reply)),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                expect = group.len();
                commit_group(&mut conn, &mut cache, &mut head, group, &notify);
                commits += 1;
                if commits.is_multiple_of(CHECKPOINT_EVERY) {
                    checkpointer.nudge();
                }
            }
        }
    }
    checkpointer.stop();
    // Fold the WAL back so a closed ledger is one file again.
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

/// Runs WAL checkpoints on its own connection and thread, so the writer's
/// commits never wait for one (the writer has `wal_autocheckpoint=0`).
pub(super) struct Checkpointer {
    tx: std::sync::mpsc::SyncSender<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let handle = std::thread::Builder::new()
            .name("ledger-ckpt".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // PASSIVE: copies what it can without blocking the writer.
                    if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "PASSIVE") {
                        tracing::warn!(error = %e, "ledger checkpoint failed");
                    }
                }
            })?;
        Ok(Checkpointer {
            tx,
            handle: Some(handle),
        })
    }

    fn nudge(&self) {
        // A full channel means a checkpoint is already due.
        let _ = self.tx.try_send(());
    }

    fn stop(mut self) {
        let (dead, _) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.tx, dead));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
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
    head: &mut Option<i64>,
    group: Vec<AppendJob>,
    notify: &broadcast::Sender<Arc<Record>>,
) {
    let now = jiff::Timestamp::now();
    let mut staged = Staged::default();
    let mut outcomes = Vec::with_capacity(group.len());
    let committed: Result<i64> = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut next = match *head {
            Some(h) => h,
            None => rows::head(&tx)?,
        };
        for (events, reply) in group {
            let result = match check_batch(&tx, &mut staged, cache, events, now, next) {
                Ok((appended, batch)) => {
                    for a in appended.iter().filter(|a| !a.duplicate) {
                        rows::insert_event(&tx, &a.record)?;
                        next = a.record.seq;
                    }
                    staged.absorb(batch);
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
        Ok(next) => *head = Some(next),
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

/// Resolves, de-duplicates, version-checks and projects one batch without
/// writing anything. Returns the records to insert (in order, `seq` from
/// `head + 1`) and the batch's staged snapshots.
fn check_batch(
    conn: &Connection,
    group: &mut Staged,
    cache: &Staged,
    events: Vec<NewEvent>,
    now: jiff::Timestamp,
    head: i64,
) -> Result<(Vec<Appended>, Staged)> {
    let mut batch = Staged::default();
    let mut out: Vec<Appended> = Vec::with_capacity(events.len());
    let mut seq = head;
    for ev in events {
        let resolved = ev.resolve(now)?;
        let mut rec = resolved.record;
        let earlier = out
            .iter()
            .find(|a| !a.duplicate && a.record.event_id == rec.event_id);
        if let Some(a) = earlier {
            let record = a.record.clone();
            out.push(Appended {
                record,
                duplicate: true,
            });
            continue;
        }
        if !resolved.fresh_id
            && let Some(original) = rows::get_event(conn, &rec.event_id)?
        {
            out.push(Appended {
                record: original,
                duplicate: true,
            });
            continue;
        }
        let layers = [&batch, &*group, cache];
        let current = match staging::stream(&layers, &rec.stream) {
            Some(v) => v,
            None => rows::stream_version(conn, &rec.stream)?,
        };
        if let Some(expected) = resolved.expected_version
            && expected != current
        {
            return Err(LedgerError::ConcurrencyConflict {
                stream: rec.stream,
                expected,
                actual: current,
            });
        }
        rec.stream_version = current + 1;
        seq += 1;
        rec.seq = seq;
        let run = match rec.run_id.as_deref() {
            Some(id) if projection::touches_run(&rec) => match staging::run(&layers, id) {
                Some(r) => Some(r),
                None => rows::run_snapshot(conn, id)?,
            },
            _ => None,
        };
        let order = match rec.order_id.as_deref() {
            Some(id) => match staging::order(&layers, id) {
                Some(o) => Some(o),
                None => rows::order_snapshot(conn, id)?,
            },
            None => None,
        };
        let changes = projection::apply(run, order, &rec)?;
        batch.streams.insert(rec.stream.clone(), rec.stream_version);
        if let Some(r) = changes.run {
            batch.runs.insert(r.run_id.clone(), r);
        }
        if let Some(o) = changes.order {
            batch.orders.insert(o.order_id.clone(), o);
        }
        out.push(Appended {
            record: rec,
            duplicate: false,
        });
    }
    Ok((out, batch))
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
