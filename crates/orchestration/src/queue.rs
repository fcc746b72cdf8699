//! The work queue: orders ready to run, the locks of orders that run, and
//! their leases.
//!
//! The ledger is the truth; this is its in-memory index, rebuilt from the
//! ledger at start and, where several nodes share the ledger, kept in step
//! with the other nodes' appends by the follower ([`super::follow`]). Taking
//! an order and recording its locks happen under one mutex, so two claims in
//! this process never hold conflicting locks; the claim itself is a
//! compare-and-append on the order's stream that also writes its lease
//! ([`garrison_ledger::Leases`]), so a stale index (or another node) can never
//! produce a double claim. Leases and their deadlines live in the lease store;
//! every entry here carries the order stream's version it reflects, and an
//! update from an older version is ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use garrison_contracts::locks::conflicts_normalized;
use tokio::sync::Notify;

/// An order waiting for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub order_id: String,
    pub run_id: Option<String>,
    pub theater_id: Option<String>,
    /// Normalised lock resources.
    pub lock_scope: Vec<String>,
    /// The order stream's version after its latest event (for the claim's CAS).
    pub version: i64,
    pub attempt: u32,
    /// `seq` of ORDER_CREATED: older orders go first.
    pub created_seq: i64,
}

impl Ready {
    /// The ready entry for `order` at `attempt`, its stream at `version`.
    pub fn of(order: &garrison_ledger::OrderSnapshot, attempt: u32, version: i64) -> Ready {
        Ready {
            order_id: order.order_id.clone(),
            run_id: order.run_id.clone(),
            theater_id: order.theater_id.clone(),
            lock_scope: order.lock_scope.clone(),
            version,
            attempt,
            created_seq: order.created_seq,
        }
    }
}

/// A claimed order: its locks and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub order_id: String,
    pub run_id: Option<String>,
    pub theater_id: Option<String>,
    pub lock_scope: Vec<String>,
    pub unit_id: String,
    pub attempt: u32,
    /// The order stream's version after the holder's latest append.
    pub version: i64,
    pub created_seq: i64,
}

impl Active {
    /// The token a worker presents with heartbeats and its report.
    pub fn lease_token(&self) -> String {
        lease_token(&self.order_id, &self.unit_id, self.attempt)
    }

    /// The order as it waited before this claim (same attempt and version).
    pub fn ready(&self) -> Ready {
        Ready {
            order_id: self.order_id.clone(),
            run_id: self.run_id.clone(),
            theater_id: self.theater_id.clone(),
            lock_scope: self.lock_scope.clone(),
            version: self.version,
            attempt: self.attempt,
            created_seq: self.created_seq,
        }
    }
}

pub fn lease_token(order_id: &str, unit_id: &str, attempt: u32) -> String {
    format!("{order_id}:{unit_id}:{attempt}")
}

/// Ready orders, oldest first, with an index by order id: reports, cancels
/// and the follower look orders up by id, which must not cost a scan of a
/// queue that may hold thousands.
#[derive(Debug, Default)]
struct ReadySet {
    by_seq: BTreeMap<i64, Ready>,
    by_id: HashMap<String, i64>,
}

impl ReadySet {
    fn insert(&mut self, ready: Ready) {
        self.remove(&ready.order_id);
        self.by_id.insert(ready.order_id.clone(), ready.created_seq);
        if let Some(old) = self.by_seq.insert(ready.created_seq, ready) {
            // Another order under the same key (never two orders in one
            // event): drop its index entry so the two maps stay in step.
            self.by_id.remove(&old.order_id);
        }
    }

    fn remove(&mut self, order_id: &str) -> Option<Ready> {
        let seq = self.by_id.remove(order_id)?;
        self.by_seq.remove(&seq)
    }

    fn get(&self, order_id: &str) -> Option<&Ready> {
        self.by_id
            .get(order_id)
            .and_then(|seq| self.by_seq.get(seq))
    }

    fn values(&self) -> impl Iterator<Item = &Ready> {
        self.by_seq.values()
    }

    fn len(&self) -> usize {
        self.by_seq.len()
    }
}

#[derive(Debug, Default)]
struct State {
    ready: ReadySet,
    active: HashMap<String, Active>,
    /// Claims granted since start (for the sentinel's progress check).
    claims: u64,
}

impl State {
    /// The version of `order_id` this queue holds (active or ready).
    fn known_version(&self, order_id: &str) -> Option<i64> {
        self.active
            .get(order_id)
            .map(|a| a.version)
            .or_else(|| self.ready.get(order_id).map(|r| r.version))
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
}

impl Queue {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding the lock cannot leave the maps half-updated
        // (every mutation is a single insert/remove), so a poisoned lock is usable.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Adds an order to the ready set and wakes waiting claimers.
    pub fn push(&self, ready: Ready) {
        self.with(|s| {
            s.active.remove(&ready.order_id);
            s.ready.insert(ready);
        });
        self.notify.notify_waiters();
    }

    /// Drops an order from the ready set (cancelled, blocked elsewhere).
    pub fn forget(&self, order_id: &str) {
        self.with(|s| {
            s.ready.remove(order_id);
            s.active.remove(order_id);
        });
        self.notify.notify_waiters();
    }

    /// Takes the oldest ready order (or `only` that one) whose locks conflict
    /// with no active order of its theater, and records it active under
    /// `unit_id` (the claim's append then makes it so, or gives it back).
    pub fn take(&self, unit_id: &str, only: Option<&str>) -> Option<Active> {
        self.with(|s| {
            let free = |r: &&Ready| !conflicts_with_active(&s.active, r);
            let order_id = match only {
                Some(o) => s.ready.get(o).filter(free),
                None => s.ready.values().find(free),
            }?
            .order_id
            .clone();
            let r = s.ready.remove(&order_id)?;
            let active = Active {
                order_id: r.order_id.clone(),
                run_id: r.run_id,
                theater_id: r.theater_id,
                lock_scope: r.lock_scope,
                unit_id: unit_id.to_string(),
                attempt: r.attempt,
                version: r.version,
                created_seq: r.created_seq,
            };
            s.active.insert(r.order_id, active.clone());
            s.claims += 1;
            Some(active)
        })
    }

    /// Whether `order_id` is ready but held back by a lock conflict.
    pub fn lock_blocked(&self, order_id: &str) -> bool {
        self.with(|s| {
            s.ready
                .get(order_id)
                .is_some_and(|r| conflicts_with_active(&s.active, r))
        })
    }

    /// Records an order claimed elsewhere (rebuild after restart).
    pub fn insert_active(&self, active: Active) {
        self.with(|s| {
            s.active.insert(active.order_id.clone(), active);
        });
    }

    /// Puts an order taken by [`Queue::take`] back (its claim could not be
    /// appended, the order is still waiting), unless something newer about
    /// it arrived meanwhile.
    pub fn give_back(&self, taken: &Active) {
        let ready = taken.ready();
        self.with(|s| {
            if s.active
                .get(&taken.order_id)
                .is_some_and(|a| a.version == taken.version && a.unit_id == taken.unit_id)
            {
                s.active.remove(&taken.order_id);
                s.ready.insert(ready);
            }
        });
        // No wake-up: nothing changed that would let a claim succeed now.
    }

    /// Whether `order_id` waits in the ready set.
    pub fn is_ready(&self, order_id: &str) -> bool {
        self.with(|s| s.ready.get(order_id).is_some())
    }

    /// Drops an order taken by [`Queue::take`] whose claim lost (another
    /// claimer, a cancel), unless something newer about it arrived meanwhile.
    pub fn drop_taken(&self, taken: &Active) {
        self.with(|s| {
            if s.active
                .get(&taken.order_id)
                .is_some_and(|a| a.version == taken.version && a.unit_id == taken.unit_id)
            {
                s.active.remove(&taken.order_id);
            }
        });
        self.notify.notify_waiters();
    }

    /// The version of the order's stream this queue reflects for it (ready
    /// or active), if it holds the order.
    pub fn known_version(&self, order_id: &str) -> Option<i64> {
        self.with(|s| s.known_version(order_id))
    }

    /// Brings one order in line with the ledger as of `version` of its
    /// stream: ready, active, or neither. Ignored (false) when the queue
    /// already reflects that version or a newer one.
    pub fn sync(&self, order_id: &str, version: i64, to: Synced) -> bool {
        let applied = self.with(|s| {
            if s.known_version(order_id).is_some_and(|k| k >= version) {
                return false;
            }
            s.ready.remove(order_id);
            s.active.remove(order_id);
            match to {
                Synced::Ready(r) => s.ready.insert(r),
                Synced::Active(a) => {
                    s.active.insert(a.order_id.clone(), a);
                }
                Synced::Gone => {}
            }
            true
        });
        if applied {
            self.notify.notify_waiters();
        }
        applied
    }

    /// Records the order stream's version after an append by the holder.
    pub fn set_version(&self, order_id: &str, version: i64) {
        self.with(|s| {
            if let Some(a) = s.active.get_mut(order_id) {
                a.version = version;
            }
        });
    }

    /// The claim of `order_id` this queue holds, if any.
    pub fn active(&self, order_id: &str) -> Option<Active> {
        self.with(|s| s.active.get(order_id).cloned())
    }

    /// Releases the order's locks and lease (it reached an outcome).
    pub fn release(&self, order_id: &str) -> Option<Active> {
        let out = self.with(|s| s.active.remove(order_id));
        // Freed locks may unblock a waiting order.
        self.notify.notify_waiters();
        out
    }

    /// `(order_id, resource)` of every lock held in `theater_id` by an order
    /// other than `except` (an assignment packet's `active_locks`).
    pub fn active_locks(&self, theater_id: Option<&str>, except: &str) -> Vec<(String, String)> {
        self.with(|s| {
            let mut out: Vec<(String, String)> = s
                .active
                .values()
                .filter(|a| a.order_id != except && a.theater_id.as_deref() == theater_id)
                .flat_map(|a| a.lock_scope.iter().map(|r| (a.order_id.clone(), r.clone())))
                .collect();
            out.sort();
            out
        })
    }

    /// Whether an order of `run_id` other than `except` is ready or active.
    pub fn run_has_other(&self, run_id: &str, except: &str) -> bool {
        let of_run = |order_id: &str, run: Option<&str>| run == Some(run_id) && order_id != except;
        self.with(|s| {
            s.active
                .values()
                .any(|a| of_run(&a.order_id, a.run_id.as_deref()))
                || s.ready
                    .values()
                    .any(|r| of_run(&r.order_id, r.run_id.as_deref()))
        })
    }

    /// Orders waiting (ready, including lock-blocked ones).
    pub fn depth(&self) -> usize {
        self.with(|s| s.ready.len())
    }

    pub fn active_count(&self) -> usize {
        self.with(|s| s.active.len())
    }

    /// Counts a claim made by another node (the follower saw it), so the
    /// sentinel sees progress on a node whose workers are elsewhere.
    pub fn note_claim(&self) {
        self.with(|s| s.claims += 1);
    }

    pub fn claims(&self) -> u64 {
        self.with(|s| s.claims)
    }

    /// Resolves when the ready set or the locks change.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// A future that resolves on the next change; create it before checking
    /// the queue so a change in between is not missed.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

/// Where [`Queue::sync`] puts an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    Ready(Ready),
    Active(Active),
    /// Neither waiting nor running (settled, blocked, or not yet enqueued).
    Gone,
}

fn conflicts_with_active(active: &HashMap<String, Active>, r: &Ready) -> bool {
    if r.lock_scope.is_empty() {
        return false;
    }
    active.values().any(|a| {
        a.theater_id == r.theater_id
            && a.lock_scope.iter().any(|held| {
                r.lock_scope
                    .iter()
                    .any(|want| conflicts_normalized(held, want))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(id: &str, seq: i64, locks: &[&str]) -> Ready {
        Ready {
            order_id: id.into(),
            run_id: Some("r".into()),
            theater_id: Some("t".into()),
            lock_scope: locks.iter().map(|s| s.to_string()).collect(),
            version: 2,
            attempt: 1,
            created_seq: seq,
        }
    }

    #[test]
    fn conflicting_locks_serialise_and_release_unblocks() {
        let q = Queue::default();
        q.push(ready("a", 1, &["src"]));
        q.push(ready("b", 2, &["src/api.py"]));
        q.push(ready("c", 3, &["docs"]));
        assert_eq!(q.take("u1", None).unwrap().order_id, "a");
        // b conflicts with a's `src`; c is next.
        assert_eq!(q.take("u2", None).unwrap().order_id, "c");
        assert!(q.take("u3", None).is_none());
        assert!(q.lock_blocked("b"));
        q.release("a");
        assert_eq!(q.take("u3", None).unwrap().order_id, "b");
    }

    #[test]
    fn run_has_other_sees_ready_and_active_orders_of_the_run() {
        let q = Queue::default();
        q.push(ready("a", 1, &[]));
        q.push(ready("b", 2, &[]));
        assert!(q.run_has_other("r", "a"));
        assert!(!q.run_has_other("other-run", "a"));
        assert_eq!(q.take("u", Some("a")).unwrap().order_id, "a");
        // b is ready, a is active.
        assert!(q.run_has_other("r", "a"));
        assert!(q.run_has_other("r", "b"));
        q.release("a");
        assert!(!q.run_has_other("r", "b"));
        assert!(q.run_has_other("r", "a"));
    }

    #[test]
    fn sync_ignores_older_versions_and_taken_orders_go_back_or_away() {
        let q = Queue::default();
        q.push(ready("a", 1, &[]));
        let taken = q.take("u", None).unwrap();
        // Another node's claim of `a` (version 3) arrives while ours is in flight.
        let theirs = Active {
            unit_id: "other".into(),
            version: 3,
            ..taken.clone()
        };
        assert!(q.sync("a", 3, Synced::Active(theirs)));
        // Our claim lost: dropping what we took keeps their record.
        q.drop_taken(&taken);
        assert_eq!(q.active_count(), 1);
        // An older event (the enqueue at version 2) changes nothing.
        assert!(!q.sync("a", 2, Synced::Ready(ready("a", 1, &[]))));
        assert_eq!(q.known_version("a"), Some(3));
        // Their report (version 5) settles it.
        assert!(q.sync("a", 5, Synced::Gone));
        assert_eq!(q.active_count() + q.depth(), 0);
        // A take whose append failed goes back to the ready set.
        q.push(ready("b", 2, &[]));
        let b = q.take("u", None).unwrap();
        q.give_back(&b);
        assert_eq!(q.depth(), 1);
        assert_eq!(q.take("u", None).unwrap().order_id, "b");
    }

    #[test]
    fn lookups_by_id_follow_every_change_of_the_ready_set() {
        let q = Queue::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            q.push(ready(id, i as i64 + 1, &[]));
        }
        // A newer version of `b` replaces the old entry rather than adding one.
        assert!(q.sync(
            "b",
            4,
            Synced::Ready(Ready {
                version: 4,
                ..ready("b", 2, &[])
            })
        ));
        assert_eq!((q.depth(), q.known_version("b")), (3, Some(4)));
        q.forget("a");
        assert!(!q.is_ready("a") && q.is_ready("b") && q.is_ready("c"));
        // Taking one by id leaves the others where they were, oldest first.
        assert_eq!(q.take("u", Some("c")).unwrap().order_id, "c");
        assert!(q.take("u", Some("a")).is_none());
        assert_eq!(q.take("u", None).unwrap().order_id, "b");
        assert_eq!((q.depth(), q.known_version("a")), (0, None));
    }
}
