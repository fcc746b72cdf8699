//! The single writer thread and its group commit.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

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

pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Command>,
    notify: broadcast::Sender<Arc<Record>>,
) {
    let mut pending: Option<Command> = None;
    let mut cache = Staged::default();
    loop {
        let first = match pending.take() {
            Some(c) => c,
            None => match rx.blocking_recv() {
                Some(c) => c,
                None => break,
            },
        };
        match first {
            Command::Rebuild { reply } => {
                cache.clear();
                let _ = reply.send(rebuild(&mut conn));
            }
            Command::Append { events, reply } => {
                let mut group: Vec<AppendJob> = vec![(events, reply)];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Command::Append { events, reply }) => group.push((events, reply)),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut conn, &mut cache, group, &notify);
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

fn commit_group(
    conn: &mut Connection,
    cache: &mut Staged,
    group: Vec<AppendJob>,
    notify: &broadcast::Sender<Arc<Record>>,
) {
    let now = jiff::Timestamp::now();
    let mut staged = Staged::default();
    let mut outcomes = Vec::with_capacity(group.len());
    let committed: Result<()> = (|| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (events, reply) in group {
            let result = append_atomically(&mut tx, cache, &mut staged, events, now);
            outcomes.push((reply, result));
        }
        for r in staged.runs.values() {
            rows::put_run(&tx, r)?;
        }
        for o in staged.orders.values() {
            rows::put_order(&tx, o)?;
        }
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = committed {
        let msg = format!("commit failed: {e}");
        for (reply, _) in outcomes {
            let _ = reply.send(Err(LedgerError::Storage(msg.clone())));
        }
        return;
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

/// One batch under its own savepoint: all of it or none of it.
fn append_atomically(
    tx: &mut Transaction<'_>,
    cache: &Staged,
    group: &mut Staged,
    events: Vec<NewEvent>,
    now: jiff::Timestamp,
) -> Result<Vec<Appended>> {
    let sp = tx.savepoint()?;
    let mut batch = Staged::default();
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        out.push(append_one(&sp, &mut batch, [&*group, cache], ev, now)?);
    }
    sp.commit()?;
    group.absorb(batch);
    Ok(out)
}

/// Appends one event, reading state through `batch`, then `outer` (group,
/// cache), then the store.
fn append_one(
    conn: &Connection,
    batch: &mut Staged,
    outer: [&Staged; 2],
    ev: NewEvent,
    now: jiff::Timestamp,
) -> Result<Appended> {
    let layers = [&*batch, outer[0], outer[1]];
    let resolved = ev.resolve(now)?;
    let mut rec = resolved.record;
    if let Some(original) = rows::get_event(conn, &rec.event_id)? {
        return Ok(Appended {
            record: original,
            duplicate: true,
        });
    }
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
    rec.seq = rows::insert_event(conn, &rec)?;

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
    // Staged only after `apply` succeeded, so a rejected event leaves no trace.
    batch.streams.insert(rec.stream.clone(), rec.stream_version);
    if let Some(r) = changes.run {
        batch.runs.insert(r.run_id.clone(), r);
    }
    if let Some(o) = changes.order {
        batch.orders.insert(o.order_id.clone(), o);
    }
    Ok(Appended {
        record: rec,
        duplicate: false,
    })
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
