//! The firing loop. Each tick brings the jobs up to the ledger's head, and
//! for every job that is due claims the window with a compare-and-append of
//! `JOB_FIRED` on the job's stream (so two loops, on one node or many, never
//! fire the same window twice), then starts the run through the
//! [`RunLauncher`] and records how it started and ended.

use std::sync::Arc;
use std::time::Duration;

use garrison_contracts::ironclaw::EventType;
use jiff::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::launcher::{LaunchRequest, RunEnd, RunLauncher};
use super::schedule::{Decision, decide};
use super::state::{FireStatus, Fired, Missed, RunFinished, RunStarted};
use super::store::Appended;
use super::{Scheduler, SchedulerError};

/// Longest wait for a launcher to queue a run.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest sleep between ticks: how soon a job created on another
/// node is noticed (local changes wake the loop at once).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// Claims of one due job per tick before leaving it to the next tick.
const CLAIM_ATTEMPTS: usize = 4;
/// How long stopping waits for in-flight fires to record their end.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// `(job_id, fire)` for every window this runner claimed.
    pub fired: Vec<(String, u64)>,
    /// One-shots this runner marked missed.
    pub missed: Vec<String>,
    /// The earliest time a job becomes due, if any will.
    pub next_due: Option<Timestamp>,
}

/// Fires due jobs of one [`Scheduler`] through one launcher.
pub struct Runner {
    scheduler: Arc<Scheduler>,
    launcher: Arc<dyn RunLauncher>,
    started: Timestamp,
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

/// A due job as read under the cache lock.
struct Due {
    job_id: String,
    version: i64,
    decision: Decision,
    request: LaunchRequest,
}

impl Runner {
    /// A runner that counts as started now: one-shots whose time passed
    /// (beyond the grace) before this are missed, not fired.
    pub fn new(scheduler: Arc<Scheduler>, launcher: Arc<dyn RunLauncher>) -> Runner {
        let started = scheduler.store.clock().now();
        Runner {
            scheduler,
            launcher,
            started,
            tasks: JoinSet::new(),
            stop: watch::channel(false).0,
        }
    }

    /// One pass: claim and launch every due window, mark missed one-shots.
    pub async fn tick(&mut self) -> Result<Tick, SchedulerError> {
        while self.tasks.try_join_next().is_some() {}
        let now = self.scheduler.store.clock().now();
        let started = self.started;
        let (due, next_due) = self
            .scheduler
            .store
            .read(|c| {
                let mut due = Vec::new();
                let mut next: Option<Timestamp> = None;
                for (id, entry) in &c.entries {
                    let Some(s) = &entry.job else { continue };
                    match decide(s, now, started) {
                        Decision::Idle => {}
                        Decision::WaitUntil(t) => next = Some(next.map_or(t, |n| n.min(t))),
                        Decision::Fire { .. } | Decision::Miss { .. } => due.push(id.clone()),
                    }
                }
                (due, next)
            })
            .await?;
        let mut tick = Tick {
            next_due,
            ..Tick::default()
        };
        for job_id in due {
            self.settle_due(&job_id, now, &mut tick).await?;
        }
        Ok(tick)
    }

    /// Claims a due job's window (or marks it missed). A claim lost to
    /// another claim leaves the job not due any more; a claim lost to
    /// another kind of write (an update, a run's end) is decided again.
    async fn settle_due(
        &mut self,
        job_id: &str,
        now: Timestamp,
        tick: &mut Tick,
    ) -> Result<(), SchedulerError> {
        let started = self.started;
        for _ in 0..CLAIM_ATTEMPTS {
            let due = self
                .scheduler
                .store
                .read(|c| {
                    let entry = c.entries.get(job_id)?;
                    let s = entry.job.as_ref()?;
                    Some(Due {
                        job_id: job_id.to_string(),
                        version: entry.version,
                        decision: decide(s, now, started),
                        request: LaunchRequest {
                            job_id: job_id.to_string(),
                            agent_id: s.job.agent_id.clone(),
                            message: s.job.message.clone(),
                            mode: s.job.mode,
                            fire: s.fires + 1,
                        },
                    })
                })
                .await?;
            let Some(d) = due else { return Ok(()) };
            match d.decision {
                Decision::Fire { scheduled_for } => {
                    let fired = Fired {
                        job_id: d.job_id.clone(),
                        fire: d.request.fire,
                        scheduled_for,
                    };
                    if self.claim(&d, EventType::JobFired, &fired, now).await? {
                        tracing::info!(job_id = %d.job_id, fire = d.request.fire, "job fired");
                        tick.fired.push((d.job_id.clone(), d.request.fire));
                        self.tasks.spawn(follow(
                            self.scheduler.clone(),
                            self.launcher.clone(),
                            d.request,
                            self.stop.subscribe(),
                        ));
                        return Ok(());
                    }
                }
                Decision::Miss { scheduled_for } => {
                    let missed = Missed {
                        job_id: d.job_id.clone(),
                        scheduled_for,
                    };
                    if self.claim(&d, EventType::JobMissed, &missed, now).await? {
                        tracing::warn!(
                            job_id = %d.job_id,
                            %scheduled_for,
                            "one-shot job missed: its time passed while no scheduler ran"
                        );
                        tick.missed.push(d.job_id.clone());
                        return Ok(());
                    }
                }
                Decision::Idle | Decision::WaitUntil(_) => return Ok(()),
            }
        }
        tracing::warn!(%job_id, "job kept changing while being claimed; next tick tries again");
        Ok(())
    }

    /// Compare-and-append at the version the decision was made on; false
    /// when another writer (node, loop or API call) came first.
    async fn claim(
        &self,
        d: &Due,
        event_type: EventType,
        payload: &impl serde::Serialize,
        now: Timestamp,
    ) -> Result<bool, SchedulerError> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| SchedulerError::Invalid(format!("cannot encode a job event: {e}")))?;
        let appended = self
            .scheduler
            .store
            .append_at(&d.job_id, d.version, event_type, payload, now)
            .await?;
        Ok(matches!(appended, Appended::Stored))
    }

    /// Waits until every fire launched so far has recorded its end.
    pub async fn settle(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// Stops: fires still waiting on their run record `interrupted` (within
    /// a grace period), then the runner is gone.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(STOP_GRACE, self.settle()).await;
        if drained.is_err() {
            tracing::warn!("scheduler stopped with fires still being recorded");
        }
    }

    /// Runs [`Runner::run`] as a background service; drained to its end at
    /// shutdown so it records how interrupted fires ended.
    pub fn start(
        self,
        signal: garrison_lifecycle::Signal,
        poll: Duration,
    ) -> garrison_lifecycle::Handle {
        garrison_lifecycle::Handle::spawn_infallible(
            "scheduler",
            garrison_lifecycle::Drain::Finish,
            self.run(signal, poll),
        )
    }

    /// Runs ticks until `shutdown` turns true: sleeps until the next due
    /// time, at most `poll`, and wakes early when a job changes locally.
    ///
    /// First, fires a dead node left `running` are recorded `interrupted`
    /// ([`Scheduler::recover_interrupted`]).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>, poll: Duration) {
        tracing::info!("scheduler started");
        if let Err(e) = self.scheduler.recover_interrupted().await {
            tracing::warn!(error = %e, "cannot record the fires a stopped node left running");
        }
        loop {
            let wait = match self.tick().await {
                Ok(t) => t
                    .next_due
                    .map(|at| at.duration_since(self.scheduler.store.clock().now()))
                    .and_then(|d| Duration::try_from(d).ok())
                    .map_or(poll, |d| d.min(poll)),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler tick failed; retrying");
                    poll
                }
            };
            let wake = self.scheduler.wake.notified();
            tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                () = wake => {}
                () = tokio::time::sleep(wait) => {}
                Some(_) = self.tasks.join_next() => {}
            }
        }
        self.stop().await;
        tracing::info!("scheduler stopped");
    }
}

/// Starts one fire's run and records its start and end on the job stream.
async fn follow(
    scheduler: Arc<Scheduler>,
    launcher: Arc<dyn RunLauncher>,
    request: LaunchRequest,
    mut stop: watch::Receiver<bool>,
) {
    let store = &scheduler.store;
    let job_id = request.job_id.clone();
    let fire = request.fire;
    let finished =
        |run_id: Option<String>, status: FireStatus, error: Option<String>| RunFinished {
            job_id: job_id.clone(),
            fire,
            run_id,
            status,
            error,
        };
    let launched = tokio::time::timeout(LAUNCH_TIMEOUT, launcher.launch(request)).await;
    let end = match launched {
        Err(_) => finished(
            None,
            FireStatus::LaunchFailed,
            Some(format!(
                "no run queued within {}s",
                LAUNCH_TIMEOUT.as_secs()
            )),
        ),
        Ok(Err(reason)) => finished(None, FireStatus::LaunchFailed, Some(reason)),
        Ok(Ok(run)) => {
            let started = RunStarted {
                job_id: job_id.clone(),
                fire,
                run_id: run.run_id.clone(),
            };
            if let Err(e) = store
                .record(&job_id, EventType::JobRunStarted, &started)
                .await
            {
                tracing::error!(%job_id, fire, error = %e, "cannot record a job's run start");
            }
            tokio::select! {
                outcome = run.finished => match outcome.status {
                    RunEnd::Completed => finished(Some(run.run_id), FireStatus::Completed, None),
                    RunEnd::Failed => finished(
                        Some(run.run_id),
                        FireStatus::Failed,
                        Some(outcome.error.unwrap_or_else(|| "the run failed".into())),
                    ),
                },
                () = stopped(&mut stop) => finished(
                    Some(run.run_id),
                    FireStatus::Interrupted,
                    Some("the scheduler stopped before the run finished".into()),
                ),
            }
        }
    };
    if end.status != FireStatus::Completed {
        tracing::warn!(%job_id, fire, status = ?end.status, error = ?end.error, "job fire did not complete");
    }
    if let Err(e) = store.record(&job_id, EventType::JobRunFinished, &end).await {
        tracing::error!(%job_id, fire, error = %e, "cannot record how a job's run ended");
    }
}

/// Resolves once `rx` turns true (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here.
    let _ = rx.wait_for(|down| *down).await;
}
