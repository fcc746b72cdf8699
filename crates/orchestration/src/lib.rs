//! Orchestration: the IronClaw services that turn an objective into orders
//! and orders into merged work — CO (plan, dispatch, synthesize), the queue
//! with its claims and leases, the worker side (executing a job in its
//! worktree), integration (gates, promotion), and the patrols (observer,
//! duty officer, sentinel).
//!
//! [`Orchestrator`] holds what they share. Every state change is a ledger
//! append; the orchestrator's own memory (ready queue, leases, open runs) is
//! an index rebuilt from the ledger by [`Orchestrator::restore`].

#[cfg(test)]
mod advance_tests;
mod claims;
mod co;
mod error;
mod executor;
mod follow;
mod ids;
pub mod in_flight;
mod integration;
mod observer;
mod patrols;
mod planner;
mod pool;
mod prepared;
mod prompt;
pub mod queue;
mod settings;
mod theaters;
mod worktrees;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use garrison_contracts::ironclaw::{EventType, NewEvent, OrderStatus, RunStatus};
use garrison_ledger::{Ledger, OrderSnapshot, Query};

pub use claims::{Job, Report, Reported};
pub use co::{Advance, ChatOutcome, CreateRun, PlanSource, PlannedOrder, RunView};
pub use error::{OrchestrationError, Result};
pub use executor::execute;
pub use ids::new_id;
pub use integration::IntegrationOutcome;
pub use observer::ObserverReport;
pub use patrols::{AuditReport, PatrolReport};
pub use pool::{patrol_once, run_job, spawn_follower, spawn_workers};
pub use queue::Queue;
pub use settings::{Bootstrap, GateCommand, Retention, Roles, Settings};
pub use theaters::Theaters;
pub use worktrees::{Archived, PREPARED_FILES, Worktree};

/// The shared state of the orchestration services. See the module docs.
pub struct Orchestrator {
    pub ledger: Arc<dyn Ledger>,
    pub settings: Settings,
    pub theaters: Theaters,
    pub queue: Queue,
    /// Runs not yet ended, for patrols (the ledger has them all; this saves a scan).
    open_runs: Mutex<BTreeSet<String>>,
    /// One `advance` at a time per process; the ledger's compare-and-append
    /// keeps nodes from enqueueing an order twice.
    advance_lock: tokio::sync::Mutex<()>,
    /// One promotion at a time per process (the vault's ref update is a
    /// compare-and-swap across processes).
    integrate_lock: tokio::sync::Mutex<()>,
    /// Integrated orders whose worktrees still exist, per theater (retention).
    integrated: Mutex<HashMap<String, VecDeque<(String, jiff::Timestamp)>>>,
    /// Orders whose integration a restart interrupted, for the next patrol.
    interrupted: Mutex<Vec<String>>,
    /// Per run, the orders another order of it depends on, as its latest
    /// full `advance` found them (see [`Orchestrator::advance_can_wait`]).
    depended_on: Mutex<HashMap<String, HashSet<String>>>,
    /// Runs whose advance a report left to a later one; the duty officer
    /// advances them on its next patrol whatever happened since.
    deferred: Mutex<BTreeSet<String>>,
    /// Recent (queue depth, claims so far) samples for the sentinel.
    backlog: Mutex<VecDeque<(usize, u64)>>,
    /// Orders marked INTEGRATION_READY (here or by another node) that this
    /// node's integration service has yet to integrate.
    to_integrate: Mutex<BTreeSet<String>>,
    /// Snapshots and specs of the orders `advance` enqueued, for their claims.
    prepared: prepared::Prepared,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("backend", &self.ledger.backend())
            .field("queue_depth", &self.queue.depth())
            .field("active", &self.queue.active_count())
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    pub fn new(ledger: Arc<dyn Ledger>, settings: Settings) -> Arc<Self> {
        Arc::new(Orchestrator {
            theaters: Theaters::new(&settings.data_dir),
            ledger,
            settings,
            queue: Queue::default(),
            open_runs: Mutex::new(BTreeSet::new()),
            advance_lock: tokio::sync::Mutex::new(()),
            integrate_lock: tokio::sync::Mutex::new(()),
            integrated: Mutex::new(HashMap::new()),
            interrupted: Mutex::new(Vec::new()),
            depended_on: Mutex::new(HashMap::new()),
            deferred: Mutex::new(BTreeSet::new()),
            backlog: Mutex::new(VecDeque::new()),
            to_integrate: Mutex::new(BTreeSet::new()),
            prepared: prepared::Prepared::default(),
        })
    }

    /// An event of this garrison.
    pub(crate) fn event(&self, t: EventType) -> NewEvent {
        let mut e = NewEvent::new(t);
        e.garrison_id = self.settings.garrison_id.clone();
        e
    }

    /// Takes the orders whose integration a restart interrupted.
    pub(crate) fn take_interrupted(&self) -> Vec<String> {
        self.interrupted
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Records which orders of `run_id` others depend on (from all its orders).
    pub(crate) fn note_dependencies(&self, run_id: &str, orders: &[OrderSnapshot]) {
        let targets: HashSet<String> = orders
            .iter()
            .flat_map(|o| o.depends_on.iter().cloned())
            .collect();
        if let Ok(mut m) = self.depended_on.lock() {
            m.insert(run_id.to_string(), targets);
        }
    }

    pub(crate) fn forget_run(&self, run_id: &str) {
        if let Ok(mut m) = self.depended_on.lock() {
            m.remove(run_id);
        }
    }

    /// Whether the `advance` after the report of `order_id` (an order
    /// without a theater: its report settled it, no integration follows) can
    /// be left to a later one. It can when no order of the run depends on it
    /// (as of the run's latest full advance) and another order of the run is
    /// still ready or held in this process's queue: that order's own report
    /// comes later and makes the same check after this order's release, so
    /// of the two the last one advances, and sees both outcomes. Whatever
    /// else happens to that order, the duty officer advances the run at its
    /// next patrol.
    pub(crate) fn advance_can_wait(&self, run_id: &str, order_id: &str) -> bool {
        let depended = self
            .depended_on
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).map(|d| d.contains(order_id)));
        // Unknown (no full advance here yet) or depended on: advance now.
        if depended != Some(false) || !self.queue.run_has_other(run_id, order_id) {
            return false;
        }
        self.defer(run_id)
    }

    /// Leaves `run_id` for the duty officer to advance; false if it cannot.
    pub(crate) fn defer(&self, run_id: &str) -> bool {
        match self.deferred.lock() {
            Ok(mut d) => {
                d.insert(run_id.to_string());
                true
            }
            Err(_) => false,
        }
    }

    /// Leaves a completed order for this node's integration service.
    pub(crate) fn note_integration(&self, order_id: &str) {
        if let Ok(mut s) = self.to_integrate.lock() {
            s.insert(order_id.to_string());
        }
    }

    /// Takes the orders left for integration.
    pub(crate) fn take_integrations(&self) -> Vec<String> {
        self.to_integrate
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_iter().collect())
            .unwrap_or_default()
    }

    /// Takes the runs whose advance a report deferred.
    pub(crate) fn take_deferred(&self) -> Vec<String> {
        self.deferred
            .lock()
            .map(|mut d| std::mem::take(&mut *d).into_iter().collect())
            .unwrap_or_default()
    }

    pub(crate) fn open_runs(&self) -> Vec<String> {
        self.open_runs
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn mark_open(&self, run_id: &str, open: bool) {
        if let Ok(mut s) = self.open_runs.lock() {
            if open {
                s.insert(run_id.to_string());
            } else {
                s.remove(run_id);
            }
        }
    }

    /// Rebuilds the in-memory index from the ledger: open runs, ready orders,
    /// and claimed orders (given one lease period for their workers to check
    /// back in before the duty officer reissues them).
    pub async fn restore(&self) -> Result<RestoreStats> {
        let created = self
            .ledger
            .read(&Query {
                event_type: Some(EventType::RunCreated),
                ..Query::default()
            })
            .await?;
        let mut stats = RestoreStats::default();
        for rec in created {
            let Some(run_id) = rec.run_id else { continue };
            let Some(run) = self.ledger.run_snapshot(&run_id).await? else {
                continue;
            };
            if run.status != RunStatus::Open {
                continue;
            }
            stats.open_runs += 1;
            self.mark_open(&run_id, true);
            for o in self.ledger.run_orders(&run_id).await? {
                let version = self
                    .ledger
                    .stream_version(&garrison_ledger::stream_for(
                        &o.garrison_id,
                        o.run_id.as_deref(),
                        Some(&o.order_id),
                    ))
                    .await?;
                match o.status {
                    OrderStatus::Queued
                        if matches!(
                            o.last_event_type,
                            EventType::OrderEnqueued | EventType::OrderReissued
                        ) =>
                    {
                        stats.ready += 1;
                        self.queue.push(queue::Ready::of(&o, o.attempt, version));
                    }
                    OrderStatus::Claimed | OrderStatus::Running => {
                        stats.claimed += 1;
                        let active = queue::Active {
                            order_id: o.order_id.clone(),
                            run_id: o.run_id.clone(),
                            theater_id: o.theater_id.clone(),
                            lock_scope: o.lock_scope.clone(),
                            unit_id: o.unit_id.clone().unwrap_or_default(),
                            attempt: o.attempt,
                            version,
                            created_seq: o.created_seq,
                        };
                        // A lease the store lost with a restart (the embedded
                        // ledger keeps leases in memory) is granted again for
                        // one lease period; a shared store still has its own.
                        self.ledger
                            .adopt_lease(self.grant(&active), version)
                            .await?;
                        self.queue.insert_active(active);
                    }
                    OrderStatus::Completed
                        if matches!(
                            o.integration,
                            Some(EventType::IntegrationStarted | EventType::IntegrationPassed)
                        ) =>
                    {
                        // Interrupted mid-integration: promotion is idempotent,
                        // so the next patrol simply integrates it again.
                        stats.interrupted_integrations += 1;
                        if !self.settings.roles.integration {
                            continue;
                        }
                        if let Ok(mut list) = self.interrupted.lock() {
                            list.push(o.order_id.clone());
                        }
                    }
                    // Marked ready while no integration service was up.
                    OrderStatus::Completed
                        if o.integration == Some(EventType::IntegrationReady)
                            && self.settings.roles.integration =>
                    {
                        self.note_integration(&o.order_id);
                    }
                    _ => {}
                }
            }
            // The process may have stopped between an order's outcome and the
            // run's advance: enqueue, block or end now (idempotent).
            self.advance(&run_id).await?;
        }
        Ok(stats)
    }
}

/// What [`Orchestrator::restore`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreStats {
    pub open_runs: u64,
    pub ready: u64,
    pub claimed: u64,
    pub interrupted_integrations: u64,
}
