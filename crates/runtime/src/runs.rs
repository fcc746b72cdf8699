//! Run records: `record.json` in each run bundle
//! (`<data-dir>/agents/<agent_id>/runs/<run_id>/`), plus an in-memory index.
//!
//! A run's record is written when it is queued and again, atomically, when
//! it ends; in between, its `queued`/`running` state lives in memory. A
//! record still `queued` or `running` on disk at open therefore belongs to a
//! process that died mid-run: it is rewritten as `failed`, saying so.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use garrison_agent::Redactor;
use garrison_contracts::openclawssy::{RunRecord, V1RunStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::error::OpenclawssyError;
use super::now;

/// The bundle file holding a run's record.
pub const RECORD_FILE: &str = "record.json";
/// The bundle file holding a run's lifecycle events, one per line.
pub const EVENTS_FILE: &str = "events.jsonl";

/// `GET /v1/runs/{id}`: the contract's record, plus the session the run
/// answered in and its times (RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredRun {
    #[serde(flatten)]
    pub record: RunRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl StoredRun {
    /// Every text a run produced with secrets replaced.
    pub fn redact(&mut self, redactor: &Redactor) {
        let r = &mut self.record;
        for text in [r.output.as_mut(), r.error.as_mut()].into_iter().flatten() {
            *text = redactor.text(text);
        }
        for t in r
            .trace
            .iter_mut()
            .flat_map(|t| t.tool_execution_results.iter_mut())
        {
            for text in [&mut t.summary, &mut t.output, &mut t.error] {
                *text = redactor.text(text);
            }
        }
    }
}

/// One line of `GET /api/admin/status`'s run list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    pub id: String,
    pub agent_id: String,
    pub status: V1RunStatus,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl From<&StoredRun> for RunSummary {
    fn from(r: &StoredRun) -> RunSummary {
        RunSummary {
            id: r.record.id.clone(),
            agent_id: r.record.agent_id.clone(),
            status: r.record.status,
            source: r.record.source.clone(),
            session_id: r.session_id.clone(),
            created_at: r.created_at.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
        }
    }
}

/// A run that has not ended in this process.
struct Live {
    run: StoredRun,
    cancel: watch::Sender<bool>,
    finished: watch::Sender<Option<RunRecord>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    index: BTreeMap<String, RunSummary>,
    live: HashMap<String, Live>,
}

/// Every run's record.
pub struct RunStore {
    agents_dir: PathBuf,
    state: Mutex<State>,
}

/// What [`RunStore::create`] hands the task that executes the run.
pub struct Handles {
    pub cancel: watch::Receiver<bool>,
    pub finished: watch::Receiver<Option<RunRecord>>,
}

fn is_live_status(s: V1RunStatus) -> bool {
    matches!(s, V1RunStatus::Queued | V1RunStatus::Running)
}

impl RunStore {
    /// Indexes every bundle's record; records left `queued`/`running` by a
    /// process that died are rewritten as `failed`.
    pub fn open(data_dir: &Path) -> Result<RunStore, OpenclawssyError> {
        let agents_dir = data_dir.join("agents");
        let mut state = State::default();
        for runs_dir in subdirs(&agents_dir)?
            .into_iter()
            .map(|agent| agent.join("runs"))
        {
            for bundle in subdirs(&runs_dir)? {
                let path = bundle.join(RECORD_FILE);
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(OpenclawssyError::io(&path, e)),
                };
                let mut run: StoredRun = match serde_json::from_slice(&bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable run record");
                        continue;
                    }
                };
                if is_live_status(run.record.status) {
                    let was = if run.record.status == V1RunStatus::Queued {
                        "queued"
                    } else {
                        "running"
                    };
                    run.record.status = V1RunStatus::Failed;
                    run.record.error = Some(format!(
                        "interrupted: the node stopped while this run was {was}, so it never finished"
                    ));
                    run.finished_at = Some(now());
                    garrison_files::write_json(&path, &run, garrison_files::PRIVATE)
                        .map_err(|e| OpenclawssyError::io(&path, e))?;
                    tracing::warn!(run = %run.record.id, "a run was interrupted by a restart; recorded as failed");
                }
                state
                    .index
                    .insert(run.record.id.clone(), RunSummary::from(&run));
            }
        }
        Ok(RunStore {
            agents_dir,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `<data-dir>/agents/<agent_id>/runs/<run_id>`.
    pub fn bundle(&self, agent_id: &str, run_id: &str) -> PathBuf {
        self.agents_dir.join(agent_id).join("runs").join(run_id)
    }

    /// Records a new run as `queued`, on disk and in memory.
    pub fn create(&self, run: StoredRun) -> Result<Handles, OpenclawssyError> {
        let path = self
            .bundle(&run.record.agent_id, &run.record.id)
            .join(RECORD_FILE);
        garrison_files::write_json(&path, &run, garrison_files::PRIVATE)
            .map_err(|e| OpenclawssyError::io(&path, e))?;
        let (cancel_tx, cancel) = watch::channel(false);
        let (finished_tx, finished) = watch::channel(None);
        let mut state = self.lock();
        state
            .index
            .insert(run.record.id.clone(), RunSummary::from(&run));
        state.live.insert(
            run.record.id.clone(),
            Live {
                run,
                cancel: cancel_tx,
                finished: finished_tx,
                task: None,
            },
        );
        Ok(Handles { cancel, finished })
    }

    /// Keeps the task of a live run, for shutdown to wait on.
    pub fn attach(&self, run_id: &str, task: tokio::task::JoinHandle<()>) {
        if let Some(live) = self.lock().live.get_mut(run_id) {
            live.task = Some(task);
        }
    }

    /// A live run is now running.
    pub fn set_running(&self, run_id: &str) {
        let mut state = self.lock();
        if let Some(live) = state.live.get_mut(run_id) {
            live.run.record.status = V1RunStatus::Running;
            live.run.started_at = Some(now());
            let summary = RunSummary::from(&live.run);
            state.index.insert(run_id.to_string(), summary);
        }
    }

    /// The live copy of a run (to build its final record from).
    pub fn live(&self, run_id: &str) -> Option<StoredRun> {
        self.lock().live.get(run_id).map(|l| l.run.clone())
    }

    /// Writes a run's final record and lets its waiters know.
    pub fn finish(&self, mut run: StoredRun) -> Result<(), OpenclawssyError> {
        run.finished_at.get_or_insert_with(now);
        let path = self
            .bundle(&run.record.agent_id, &run.record.id)
            .join(RECORD_FILE);
        let written = garrison_files::write_json(&path, &run, garrison_files::PRIVATE)
            .map_err(|e| OpenclawssyError::io(&path, e));
        let mut state = self.lock();
        state
            .index
            .insert(run.record.id.clone(), RunSummary::from(&run));
        if written.is_ok() {
            if let Some(live) = state.live.remove(&run.record.id) {
                live.finished.send_replace(Some(run.record.clone()));
            }
        } else if let Some(live) = state.live.get_mut(&run.record.id) {
            // Served from memory until this process ends; a restart then
            // finds the queued record and reports the run as interrupted.
            live.finished.send_replace(Some(run.record.clone()));
            live.run = run;
        }
        written
    }

    /// A run's record: the live one while it runs, else the bundle's.
    pub fn get(&self, run_id: &str) -> Result<StoredRun, OpenclawssyError> {
        let agent_id = {
            let state = self.lock();
            if let Some(live) = state.live.get(run_id) {
                return Ok(live.run.clone());
            }
            match state.index.get(run_id) {
                Some(s) => s.agent_id.clone(),
                None => {
                    return Err(OpenclawssyError::NotFound(format!("no run `{run_id}`")));
                }
            }
        };
        let path = self.bundle(&agent_id, run_id).join(RECORD_FILE);
        let bytes = std::fs::read(&path).map_err(|e| OpenclawssyError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            OpenclawssyError::Internal(format!("run record {} is not valid: {e}", path.display()))
        })
    }

    /// The newest `limit` runs, newest first.
    pub fn recent(&self, limit: usize) -> Vec<RunSummary> {
        let state = self.lock();
        let mut runs: Vec<RunSummary> = state.index.values().cloned().collect();
        runs.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
        runs.truncate(limit);
        runs
    }

    /// Asks every live run to stop and returns their tasks.
    pub fn cancel_all(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.lock()
            .live
            .values_mut()
            .filter_map(|l| {
                l.cancel.send_replace(true);
                l.task.take()
            })
            .collect()
    }
}

/// The directories directly inside `dir` (none when it does not exist).
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, OpenclawssyError> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(OpenclawssyError::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: &str) -> StoredRun {
        StoredRun {
            record: RunRecord {
                id: id.into(),
                agent_id: "agent_default".into(),
                source: "scheduler".into(),
                status: V1RunStatus::Queued,
                output: None,
                artifact_path: None,
                duration_ms: None,
                tool_calls: 0,
                provider: None,
                model: None,
                error: None,
                trace: None,
            },
            session_id: None,
            created_at: now(),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn runs_live_when_the_process_died_come_back_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path()).unwrap();
        let handles = store.create(queued("run_a")).unwrap();
        store.create(queued("run_b")).unwrap();
        store.set_running("run_b");
        store.create(queued("run_c")).unwrap();
        let mut done = store.live("run_c").unwrap();
        done.record.status = V1RunStatus::Completed;
        done.record.output = Some("ok".into());
        store.finish(done).unwrap();
        assert_eq!(
            store.get("run_a").unwrap().record.status,
            V1RunStatus::Queued
        );
        assert!(handles.finished.borrow().is_none());
        // The process "dies" here: nothing more is written for a and b.
        drop(store);

        let reopened = RunStore::open(dir.path()).unwrap();
        for id in ["run_a", "run_b"] {
            let r = reopened.get(id).unwrap();
            assert_eq!(r.record.status, V1RunStatus::Failed, "{id}");
            let err = r.record.error.unwrap();
            assert!(err.starts_with("interrupted"), "{err}");
            assert!(r.finished_at.is_some());
        }
        // The rewrite is durable: a second restart reads it as is.
        let again = RunStore::open(dir.path()).unwrap();
        assert_eq!(
            again.get("run_a").unwrap().record.error,
            reopened.get("run_a").unwrap().record.error
        );
        assert_eq!(
            again.get("run_c").unwrap().record.output.as_deref(),
            Some("ok")
        );
        assert_eq!(again.recent(10).len(), 3);
        assert!(matches!(
            again.get("run_zz"),
            Err(OpenclawssyError::NotFound(_))
        ));
    }
}
