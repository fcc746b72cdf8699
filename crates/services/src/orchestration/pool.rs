//! The in-process worker pool and the patrol clock `serve` runs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Orchestrator;
use super::executor::execute;

/// Starts `settings.workers` worker tasks and the patrol clock; they stop
/// when `shutdown` turns true (an attempt in flight finishes first).
pub fn spawn_workers(
    orch: Arc<Orchestrator>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for n in 0..orch.settings.workers {
        let orch = orch.clone();
        let mut down = shutdown.clone();
        let unit_id = format!("{}-w{n}", orch.settings.garrison_id);
        handles.push(tokio::spawn(async move {
            while !*down.borrow() {
                let changed = orch.queue.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                match orch.claim(&unit_id, None).await {
                    Ok(Some(job)) => run_job(&orch, job).await,
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
        }));
    }
    handles.push(tokio::spawn(patrol_clock(orch, shutdown)));
    handles
}

/// Runs a claimed job here and reports it.
pub async fn run_job(orch: &Arc<Orchestrator>, job: super::Job) {
    let token = job.lease_token.clone();
    let order_id = job.message.order_id.clone();
    let report = execute(&job, || {
        let alive = orch.heartbeat(&order_id, &token);
        async move { alive }
    })
    .await;
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
    loop {
        tokio::select! {
            _ = patrol.tick() => patrol_once(&orch).await,
            _ = sentinel.tick() => {
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

/// One duty patrol plus one observer patrol per theater with open runs.
pub async fn patrol_once(orch: &Arc<Orchestrator>) {
    if let Err(e) = orch.duty_patrol().await {
        tracing::error!(error = %e, "duty patrol failed");
    }
    for order_id in orch.take_interrupted() {
        match orch.integrate(&order_id, None).await {
            Ok(_) => {
                if let Ok(o) = orch.order(&order_id).await
                    && let Some(run_id) = o.run_id
                {
                    let _ = orch.advance(&run_id).await;
                }
            }
            Err(e) => {
                tracing::error!(order_id = %order_id, error = %e, "resuming an interrupted integration")
            }
        }
    }
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
            Ok(found) => {
                for order_id in found.ready {
                    let _ = orch.integrate_ready(&order_id).await;
                    if let Ok(o) = orch.order(&order_id).await
                        && let Some(run_id) = o.run_id
                    {
                        let _ = orch.advance(&run_id).await;
                    }
                }
            }
            Err(e) => tracing::error!(theater = %t, error = %e, "observer patrol failed"),
        }
    }
}
