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
