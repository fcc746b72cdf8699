//! Scheduler jobs start `/v1` runs: [`RunLauncher`] for [`Openclawssy`].
//!
//! `isolated` jobs run without history; `main_like` jobs run in one chat
//! session per job (user `scheduler`, room = the job id, channel
//! `scheduler`), so each fire sees what earlier fires said and did, under
//! the same context policy as chat.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use garrison_contracts::openclawssy::{JobMode, V1RunStatus};

use super::sessions::SessionKey;
use super::{Openclawssy, StartRun};
use garrison_scheduler::{LaunchRequest, LaunchedRun, RunLauncher, RunOutcome};

/// The `source` of runs started by jobs.
pub const SOURCE: &str = "scheduler";

impl RunLauncher for Openclawssy {
    fn launch(&self, request: LaunchRequest) -> BoxFuture<'static, Result<LaunchedRun, String>> {
        let service = self.clone();
        async move {
            let session_id = match request.mode {
                JobMode::Isolated => None,
                JobMode::MainLike => {
                    let key = SessionKey::new(
                        &request.agent_id,
                        SOURCE,
                        Some(&request.job_id),
                        Some(SOURCE),
                    );
                    let (id, _) = service
                        .inner
                        .sessions
                        .current_or_open(&key)
                        .map_err(|e| e.to_string())?;
                    Some(id)
                }
            };
            let started = service
                .start_run(StartRun {
                    agent_id: request.agent_id,
                    message: request.message,
                    source: SOURCE.into(),
                    session_id,
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut finished = started.finished;
            let outcome = async move {
                match finished.wait_for(Option::is_some).await {
                    Ok(record) => match record.as_ref() {
                        Some(r) if r.status == V1RunStatus::Completed => RunOutcome::completed(),
                        Some(r) => RunOutcome::failed(
                            r.error
                                .clone()
                                .unwrap_or_else(|| format!("run ended {}", status_name(r.status))),
                        ),
                        None => RunOutcome::failed("the run ended without a record"),
                    },
                    Err(_) => RunOutcome::failed("the run service stopped before the run ended"),
                }
            }
            .boxed();
            Ok(LaunchedRun {
                run_id: started.run_id,
                finished: outcome,
            })
        }
        .boxed()
    }
}

fn status_name(s: V1RunStatus) -> &'static str {
    match s {
        V1RunStatus::Queued => "queued",
        V1RunStatus::Running => "running",
        V1RunStatus::Completed => "completed",
        V1RunStatus::Failed => "failed",
        V1RunStatus::Cancelled => "cancelled",
    }
}
