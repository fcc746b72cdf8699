//! The in-process worker pool and the patrol clock `serve` runs.

use std::sync::Arc;
use std::time::Duration;

use garrison_lifecycle::{Drain, Handle, Signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::book::Pending;
use super::executor::{UnitEnv, execute};
use super::{Job, Orchestrator, Report};
use crate::in_flight::InFlight;

/// The in-process worker pool and patrol clock as background services:
/// `Pool::new(orch).start(signal)`. Each is bounded at shutdown: the drain
/// timeout lets a worker finish the attempt in hand (its report appended
/// before the ledger closes); one still running then is aborted, and its
/// lease lapses into a reissue on the next start.
pub struct Pool {
    orch: Arc<Orchestrator>,
}

impl Pool {
    pub fn new(orch: Arc<Orchestrator>) -> Self {
        Pool { orch }
    }

    pub fn start(self, signal: Signal) -> Vec<Handle> {
        spawn_workers(self.orch, signal)
            .into_iter()
            .map(|task| Handle::from_task("worker pool", Drain::Bounded, task))
            .collect()
    }
}

/// On a shared ledger, folds other nodes' appends into this node's queue
/// (see `follow`), from `after`: `Follower::new(orch, after).start(signal)`.
pub struct Follower {
    orch: Arc<Orchestrator>,
    after: i64,
}

impl Follower {
    pub fn new(orch: Arc<Orchestrator>, after: i64) -> Self {
        Follower { orch, after }
    }

    pub fn start(self, signal: Signal) -> Handle {
        Handle::from_task(
            "follower",
            Drain::Bounded,
            spawn_follower(self.orch, self.after, signal),
        )
    }
}

/// Starts `settings.workers` worker tasks (on a node with the worker
/// service) and the patrol clock (with any patrol or integration); they stop
/// when `shutdown` turns true (an attempt in flight finishes first, and its
/// report and integration with it).
pub fn spawn_workers(
    orch: Arc<Orchestrator>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let roles = orch.settings.roles;
    let workers = if roles.worker {
        orch.settings.workers
    } else {
        0
    };
    for n in 0..workers {
        let orch = orch.clone();
        let mut down = shutdown.clone();
        let unit_id = format!("{}-w{n}", orch.settings.garrison_id);
        handles.push(tokio::spawn(async move {
            // The previous attempt's report, committing while this worker
            // claims its next order.
            let mut reporting = InFlight::default();
            while !*down.borrow() {
                let changed = orch.queue.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                match orch.claim(&unit_id, None).await {
                    Ok(Some(job)) => {
                        let report = execute_job(&orch, &job).await;
                        let orch = orch.clone();
                        reporting
                            .hand_over(async move { finish_job(&orch, report).await })
                            .await;
                    }
                    Ok(None) => {
                        tokio::select! {
                            () = &mut changed => {}
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = down.changed() => {}
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claim failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            reporting.finish().await;
        }));
    }
    if roles.runs("patrols") || roles.integration {
        handles.push(tokio::spawn(patrol_clock(orch, shutdown)));
    }
    handles
}

/// Starts following the shared ledger from `after` (see `follow`): for
/// nodes that share a PostgreSQL ledger with others.
pub fn spawn_follower(
    orch: Arc<Orchestrator>,
    after: i64,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(orch.follow(after, shutdown))
}

/// Runs a claimed job here and reports it.
pub async fn run_job(orch: &Arc<Orchestrator>, job: Job) {
    let report = execute_job(orch, &job).await;
    finish_job(orch, report).await;
}

/// Runs a claimed job here, heartbeating its lease, and returns its report.
pub async fn execute_job(orch: &Arc<Orchestrator>, job: &Job) -> Report {
    let token = job.lease_token.clone();
    let order_id = job.message.order_id.clone();
    let secrets = orch.settings.secrets.redactor();
    let env = UnitEnv {
        data_dir: Some(&orch.settings.data_dir),
        secrets: &secrets,
        sandbox: &orch.settings.sandbox,
    };
    execute(job, env, || async {
        match orch.heartbeat(&order_id, &token).await {
            Ok(alive) => alive,
            Err(e) => {
                tracing::warn!(order_id = %order_id, error = %e, "heartbeat failed");
                false
            }
        }
    })
    .await
}

/// Reports an attempt, then integrates and advances what it unblocks.
pub async fn finish_job(orch: &Arc<Orchestrator>, report: Report) {
    let order_id = report.order_id.clone();
    match orch.report(report).await {
        Ok(done) => {
            if let Err(e) = orch.after_report(&done).await {
                tracing::error!(order_id = %order_id, error = %e, "after the report");
            }
        }
        Err(e) => tracing::warn!(order_id = %order_id, error = %e, "report refused"),
    }
}

/// Ticks the duty officer and the observers every patrol interval (then
/// integrates what they found ready) and the sentinel every sentinel interval.
async fn patrol_clock(orch: Arc<Orchestrator>, mut down: watch::Receiver<bool>) {
    let mut patrol = tokio::time::interval(orch.settings.patrol_interval);
    let mut sentinel = tokio::time::interval(orch.settings.sentinel_interval);
    // Both clocks start one interval from now (an interval's first tick is
    // immediate; a fresh node has nothing to patrol yet).
    patrol.tick().await;
    sentinel.tick().await;
    let roles = orch.settings.roles;
    loop {
        tokio::select! {
            _ = patrol.tick() => patrol_once(&orch).await,
            _ = sentinel.tick(), if roles.sentinel => {
                if let Err(e) = orch.audit().await {
                    tracing::error!(error = %e, "sentinel audit failed");
                }
            }
            _ = down.changed() => return,
        }
        if *down.borrow() {
            return;
        }
    }
}

/// One duty patrol plus one observer patrol per theater with open runs,
/// then the pending integrations (found ready, or interrupted by a restart)
/// — each part on a node that runs its service.
pub async fn patrol_once(orch: &Arc<Orchestrator>) {
    let roles = orch.settings.roles;
    if roles.duty
        && let Err(e) = orch.duty_patrol().await
    {
        tracing::error!(error = %e, "duty patrol failed");
    }
    if roles.observer {
        let mut theaters = std::collections::BTreeSet::new();
        for run_id in orch.open_runs() {
            if let Ok(run) = orch.run(&run_id).await
                && let Some(t) = run.theater_id
            {
                theaters.insert(t);
            }
        }
        for t in theaters {
            match orch.patrol_theater(&t).await {
                Ok(found) if roles.integration => {
                    for order_id in found.ready {
                        orch.note_integration(&order_id, Pending::Ready);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(theater = %t, error = %e, "observer patrol failed"),
            }
        }
    }
    if roles.integration {
        for (order_id, how) in orch.take_integrations() {
            if let Err(e) = orch.integrate_pending(&order_id, how).await {
                tracing::error!(order_id = %order_id, error = %e, ?how, "integrating a pending order");
            }
            advance_order_run(orch, &order_id).await;
        }
    }
}

async fn advance_order_run(orch: &Arc<Orchestrator>, order_id: &str) {
    if let Ok(o) = orch.order(order_id).await
        && let Some(run_id) = o.run_id
    {
        let _ = orch.advance(&run_id).await;
    }
}
