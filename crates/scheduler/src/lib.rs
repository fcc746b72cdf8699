//! Scheduler jobs (Openclawssy contract §4): `@every <duration>` and RFC3339
//! one-shot jobs that each start a run of their agent when they fire.
//!
//! - `schedule`: when a job fires next, and the no-replay rule (pure).
//! - `state`: the events of a job stream and the state folded from them.
//! - `store`: persistence in the ledger (stream `job:<job_id>`), with a
//!   cache kept up to the ledger's head.
//! - `runner`: the firing loop; fires are claimed by compare-and-append.
//! - `launcher`: the seam to whatever starts runs.
//! - `input` / `view`: what the API takes and shows.

mod clock;
mod input;
mod launcher;
mod runner;
mod schedule;
mod state;
mod store;
mod view;

use std::sync::Arc;

use garrison_contracts::openclawssy::SchedulerJob;
use garrison_ledger::{Ledger, LedgerError};
use tokio::sync::Notify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use input::JobInput;
pub use launcher::{LaunchRequest, LaunchedRun, RunEnd, RunLauncher, RunOutcome};
pub use runner::{DEFAULT_POLL, Runner, Tick};
pub use state::KEEP_FIRES;

use state::{FireStatus, RunFinished};

/// The reason of a fire that was `launching` or `running` when its node
/// stopped without recording its end (a SIGKILL, a crash, a power cut).
pub const NODE_STOPPED: &str = "the node stopped while this was running";
pub use store::JobStore;
pub use view::{FireView, JobView};

/// Why a scheduler operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The input breaks a rule of the contract (the message says which).
    #[error("{0}")]
    Invalid(String),
    #[error("job `{0}` already exists")]
    Exists(String),
    #[error("no job `{0}`")]
    NotFound(String),
    /// Other writers kept changing the job; nothing was written.
    #[error("job `{0}` kept changing while this change was being written; try again")]
    Contended(String),
    #[error("the scheduler cannot use the ledger: {0}")]
    Ledger(#[from] LedgerError),
}

/// The jobs of one ledger and the signal that wakes a local firing loop
/// when one of them changes. Every node over the ledger may have one; only
/// nodes with a [`RunLauncher`] run a [`Runner`].
pub struct Scheduler {
    store: JobStore,
    wake: Notify,
}

impl Scheduler {
    /// Jobs on the system clock.
    pub fn new(ledger: Arc<dyn Ledger>) -> Arc<Scheduler> {
        Self::with_clock(ledger, Arc::new(SystemClock))
    }

    /// Jobs on `clock` (simulations and tests move it by hand).
    pub fn with_clock(ledger: Arc<dyn Ledger>, clock: Arc<dyn Clock>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            store: JobStore::new(ledger, clock),
            wake: Notify::new(),
        })
    }

    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// Every job, ordered by id.
    pub async fn list(&self) -> Result<Vec<JobView>, SchedulerError> {
        self.store.list().await
    }

    pub async fn get(&self, job_id: &str) -> Result<JobView, SchedulerError> {
        self.store.get(job_id).await
    }

    /// Up to `limit` of the job's latest fires, newest first.
    pub async fn fires(&self, job_id: &str, limit: usize) -> Result<Vec<FireView>, SchedulerError> {
        self.store.fires(job_id, limit).await
    }

    /// Creates a job from a caller's input (all required fields set).
    pub async fn create(&self, input: JobInput) -> Result<JobView, SchedulerError> {
        let view = self.store.create(input.into_new()?).await?;
        self.wake.notify_one();
        Ok(view)
    }

    /// Replaces job `job_id` with a whole new record (`created_at` kept).
    pub async fn replace(&self, job_id: &str, input: JobInput) -> Result<JobView, SchedulerError> {
        let job = input.into_replacement(job_id)?;
        self.changed(self.store.update(job_id, |_| Ok(job.clone())).await)
    }

    /// Changes only the fields `input` sets.
    pub async fn patch(&self, job_id: &str, input: JobInput) -> Result<JobView, SchedulerError> {
        self.changed(
            self.store
                .update(job_id, |current: &SchedulerJob| {
                    input.clone().patch(current)
                })
                .await,
        )
    }

    /// Turns firing on or off.
    pub async fn set_enabled(
        &self,
        job_id: &str,
        enabled: bool,
    ) -> Result<JobView, SchedulerError> {
        self.patch(
            job_id,
            JobInput {
                enabled: Some(enabled),
                ..JobInput::default()
            },
        )
        .await
    }

    pub async fn delete(&self, job_id: &str) -> Result<(), SchedulerError> {
        self.store.delete(job_id).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Ends the fires a dead node left behind: every fire still
    /// `launching` or `running` becomes `interrupted` with
    /// [`NODE_STOPPED`] as its reason (so the job's `last_outcome` says
    /// so), and the list of `(job_id, fire)` recovered is returned.
    ///
    /// Only on the embedded ledger: one process owns it (`ledger.db.lock`),
    /// so before this process fires anything no other can be running a
    /// fire. Fires record no owning node, so on a ledger that several nodes
    /// share a fire still running elsewhere cannot be told from one whose
    /// node died; there this does nothing (and says so in the log).
    pub async fn recover_interrupted(&self) -> Result<Vec<(String, u64)>, SchedulerError> {
        let backend = self.store.ledger().backend();
        if backend != "sqlite" {
            tracing::info!(
                backend,
                "fires left running by a stopped node are not recovered on a shared ledger"
            );
            return Ok(Vec::new());
        }
        let stale = self
            .store
            .read(|c| {
                c.entries
                    .iter()
                    .filter_map(|(id, e)| e.job.as_ref().map(|j| (id, j)))
                    .flat_map(|(id, j)| {
                        j.recent
                            .iter()
                            .filter(|f| {
                                matches!(f.status, FireStatus::Launching | FireStatus::Running)
                            })
                            .map(move |f| (id.clone(), f.fire, f.run_id.clone()))
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        let mut recovered = Vec::new();
        for (job_id, fire, run_id) in stale {
            let end = RunFinished {
                job_id: job_id.clone(),
                fire,
                run_id,
                status: FireStatus::Interrupted,
                error: Some(NODE_STOPPED.into()),
            };
            self.store
                .record(
                    &job_id,
                    garrison_contracts::ironclaw::EventType::JobRunFinished,
                    &end,
                )
                .await?;
            tracing::warn!(%job_id, fire, "a fire left running by a stopped node is recorded as interrupted");
            recovered.push((job_id, fire));
        }
        if !recovered.is_empty() {
            self.wake.notify_one();
        }
        Ok(recovered)
    }

    /// A firing loop for this scheduler's jobs, started now.
    pub fn runner(self: &Arc<Self>, launcher: Arc<dyn RunLauncher>) -> Runner {
        Runner::new(self.clone(), launcher)
    }

    fn changed(&self, r: Result<JobView, SchedulerError>) -> Result<JobView, SchedulerError> {
        if r.is_ok() {
            self.wake.notify_one();
        }
        r
    }
}
