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
mod book;
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
mod queue;
mod settings;
mod theaters;
mod worktrees;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use book::{IntegrationBook, Pending, RunBook};

use garrison_contracts::ironclaw::{EventType, NewEvent, OrderStatus, RunStatus};
use garrison_ledger::{Ledger, OrderSnapshot, Query};

pub use claims::{Job, Report, Reported};
pub use co::{Advance, ChatOutcome, CreateRun, PlanSource, PlannedOrder, RunView};
pub use error::{OrchestrationError, Result};
pub use executor::{UnitEnv, execute};
pub use ids::new_id;
pub use integration::IntegrationOutcome;
pub use observer::ObserverReport;
pub use patrols::{AuditReport, PatrolReport};
pub use pool::{Follower, Pool, patrol_once, run_job, spawn_follower, spawn_workers};
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
    /// The runs this node watches (open, dependencies, deferred advances).
    runs: Mutex<RunBook>,
    /// One `advance` at a time per process; the ledger's compare-and-append
    /// keeps nodes from enqueueing an order twice.
    advance_lock: tokio::sync::Mutex<()>,
    /// One promotion at a time per process (the vault's ref update is a
    /// compare-and-swap across processes).
    integrate_lock: tokio::sync::Mutex<()>,
    /// The integrations this node owes and the integrated worktrees it keeps.
    integrations: Mutex<IntegrationBook>,
    /// Recent (queue depth, claims so far) samples for the sentinel.
    backlog: Mutex<VecDeque<(usize, u64)>>,
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
            runs: Mutex::default(),
            advance_lock: tokio::sync::Mutex::new(()),
            integrate_lock: tokio::sync::Mutex::new(()),
            integrations: Mutex::default(),
            backlog: Mutex::new(VecDeque::new()),
            prepared: prepared::Prepared::default(),
        })
    }

    /// An event of this garrison.
    pub(crate) fn event(&self, t: EventType) -> NewEvent {
        let mut e = NewEvent::new(t);
        e.garrison_id = self.settings.garrison_id.clone();
        e
    }

    /// The run book (a poisoned lock is recovered: every change to it is
    /// one step under the lock).
    fn runs(&self) -> MutexGuard<'_, RunBook> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn integrations(&self) -> MutexGuard<'_, IntegrationBook> {
        self.integrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records which orders of `run_id` others depend on (from all its orders).
    pub(crate) fn note_dependencies(&self, run_id: &str, orders: &[OrderSnapshot]) {
        let targets: HashSet<String> = orders
            .iter()
            .flat_map(|o| o.depends_on.iter().cloned())
            .collect();
        self.runs().depended_on.insert(run_id.to_string(), targets);
    }

    pub(crate) fn forget_run(&self, run_id: &str) {
        self.runs().forget(run_id);
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
            .runs()
            .depended_on
            .get(run_id)
            .map(|d| d.contains(order_id));
        // Unknown (no full advance here yet) or depended on: advance now.
        if depended != Some(false) || !self.queue.run_has_other(run_id, order_id) {
            return false;
        }
        self.defer(run_id);
        true
    }

    /// Leaves `run_id` for the duty officer to advance.
    pub(crate) fn defer(&self, run_id: &str) {
        self.runs().deferred.insert(run_id.to_string());
    }

    /// Takes the runs whose advance a report deferred.
    pub(crate) fn take_deferred(&self) -> Vec<String> {
        std::mem::take(&mut self.runs().deferred)
            .into_iter()
            .collect()
    }

    /// Leaves an order for this node's integration service.
    pub(crate) fn note_integration(&self, order_id: &str, how: Pending) {
        self.integrations().note(order_id, how);
    }

    /// Takes the orders left for integration.
    pub(crate) fn take_integrations(&self) -> Vec<(String, Pending)> {
        self.integrations().take()
    }

    pub(crate) fn open_runs(&self) -> Vec<String> {
        self.runs().open.iter().cloned().collect()
    }

    pub(crate) fn mark_open(&self, run_id: &str, open: bool) {
        let mut runs = self.runs();
        if open {
            runs.open.insert(run_id.to_string());
        } else {
            runs.open.remove(run_id);
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
                        self.note_integration(&o.order_id, Pending::Interrupted);
                    }
                    // Marked ready while no integration service was up.
                    OrderStatus::Completed
                        if o.integration == Some(EventType::IntegrationReady)
                            && self.settings.roles.integration =>
                    {
                        self.note_integration(&o.order_id, Pending::Ready);
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
