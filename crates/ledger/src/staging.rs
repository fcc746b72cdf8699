//! Write-behind layers for a writer's group commit.
//!
//! A batch stages its stream versions and snapshots in its own layer; once its
//! records are written the layer folds into the group's; when the group
//! commits, each touched snapshot is written once. A failed batch just drops
//! its layer, so staged state never runs ahead of what is stored.

use std::collections::HashMap;

use crate::error::{LedgerError, Result};
use crate::event::{Appended, NewEvent, Record};
use crate::projection::{self, OrderSnapshot, RunSnapshot};

#[derive(Default)]
pub(crate) struct Staged {
    /// Events appended by earlier batches of the group, by `event_id`, so a
    /// replay within the group is recognised before anything is stored.
    pub events: HashMap<String, Record>,
    pub streams: HashMap<String, i64>,
    pub runs: HashMap<String, RunSnapshot>,
    pub orders: HashMap<String, OrderSnapshot>,
}

impl Staged {
    /// Moves everything from `later` into this layer (later values win),
    /// leaving `later` empty with its tables kept for reuse.
    pub fn absorb(&mut self, later: &mut Staged) {
        self.events.extend(later.events.drain());
        self.streams.extend(later.streams.drain());
        self.runs.extend(later.runs.drain());
        self.orders.extend(later.orders.drain());
    }

    pub fn len(&self) -> usize {
        self.events.len() + self.streams.len() + self.runs.len() + self.orders.len()
    }

    pub fn clear(&mut self) {
        self.events.clear();
        self.streams.clear();
        self.runs.clear();
        self.orders.clear();
    }
}

/// The newest staged value across `layers` (innermost first).
fn stream(layers: &[&Staged], name: &str) -> Option<i64> {
    layers.iter().find_map(|l| l.streams.get(name).copied())
}

/// A snapshot as the batch will change it: copied from the batch's or the
/// group's layer (which must stay whole whatever this event does), else taken
/// out of the cache rather than copied. The cache holds only committed state,
/// which the store holds too, so a snapshot lost with a failed batch or group
/// costs one read later, never a wrong answer.
fn snapshot<T: Clone>(
    layers: [&HashMap<String, T>; 2],
    cache: Option<&mut HashMap<String, T>>,
    id: &str,
) -> Option<T> {
    layers
        .iter()
        .find_map(|l| l.get(id).cloned())
        .or_else(|| cache.and_then(|c| c.remove(id)))
}

/// Where a writer reads committed state that no layer has staged.
pub(crate) trait Lookup {
    fn event(&mut self, event_id: &str) -> Result<Option<Record>>;
    fn stream_version(&mut self, stream: &str) -> Result<i64>;
    fn run(&mut self, run_id: &str) -> Result<Option<RunSnapshot>>;
    fn order(&mut self, order_id: &str) -> Result<Option<OrderSnapshot>>;
}

/// Resolves, de-duplicates, version-checks and projects one batch without
/// writing anything: state is read through the group's layer, then the cache
/// of committed state (if any), then `store`. Returns the outcome of each
/// event (new ones numbered from `head + 1`) and the batch's own layer, to be
/// absorbed into the group once its records are written.
pub(crate) fn check_batch(
    store: &mut dyn Lookup,
    group: &Staged,
    mut cache: Option<&mut Staged>,
    events: Vec<NewEvent>,
    now: &str,
    head: i64,
) -> Result<(Vec<Appended>, Staged)> {
    let mut batch = Staged::default();
    let mut out: Vec<Appended> = Vec::with_capacity(events.len());
    let mut seq = head;
    for ev in events {
        let resolved = crate::event::resolve(ev, now)?;
        let mut rec = resolved.record;
        if !resolved.fresh_id {
            // The cache keeps no events: once stored, the store answers.
            let layers = [&batch, group];
            let original = match layers.iter().find_map(|l| l.events.get(&rec.event_id)) {
                Some(r) => Some(r.clone()),
                None => store.event(&rec.event_id)?,
            };
            if let Some(record) = original {
                out.push(Appended {
                    record,
                    duplicate: true,
                });
                continue;
            }
        }
        let layers = [&batch, group];
        let current = match stream(&layers, &rec.stream)
            .or_else(|| cache.as_deref().and_then(|c| stream(&[c], &rec.stream)))
        {
            Some(v) => v,
            None => store.stream_version(&rec.stream)?,
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
        let run_snapshot = match rec.run_id.as_deref() {
            Some(id) if projection::touches_run(&rec) => match snapshot(
                [&batch.runs, &group.runs],
                cache.as_deref_mut().map(|c| &mut c.runs),
                id,
            ) {
                Some(r) => Some(r),
                None => store.run(id)?,
            },
            _ => None,
        };
        let order_snapshot = match rec.order_id.as_deref() {
            Some(id) => match snapshot(
                [&batch.orders, &group.orders],
                cache.as_deref_mut().map(|c| &mut c.orders),
                id,
            ) {
                Some(o) => Some(o),
                None => store.order(id)?,
            },
            None => None,
        };
        let changes = projection::apply(run_snapshot, order_snapshot, &rec)?;
        // Staged only after `apply` succeeded, so a rejected event leaves no trace.
        batch.streams.insert(rec.stream.clone(), rec.stream_version);
        if let Some(r) = changes.run {
            batch.runs.insert(r.run_id.clone(), r);
        }
        if let Some(o) = changes.order {
            batch.orders.insert(o.order_id.clone(), o);
        }
        // Only a caller-chosen id can come again within the group: a fresh
        // one is unknown outside this batch until it commits.
        if !resolved.fresh_id {
            batch.events.insert(rec.event_id.clone(), rec.clone());
        }
        out.push(Appended {
            record: rec,
            duplicate: false,
        });
    }
    Ok((out, batch))
}
