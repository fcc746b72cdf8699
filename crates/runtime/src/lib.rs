//! Openclawssy's run service: what `/v1` and the admin API stand on.
//!
//! [`Openclawssy`] owns, under the data dir: run records (`runs`), chat
//! sessions (`sessions`), the agent runtime's config (`admin_config`) and
//! the secret store (`secrets`). [`Openclawssy::start_run`] is the one way a
//! run begins, whether from `POST /v1/runs`, a chat message or the
//! scheduler; `execute` carries it out with the agent crate's
//! `run_agent_with` in `<data-dir>/agents/<agent_id>/workspace`.
//!
//! No secret value leaves through here: the store is encrypted at rest
//! (`secrets`), runs get the stored values to scrub, in every encoding, from
//! tool output before the model sees it and from their events, records and
//! session messages, and every answer of this module shows names only.

mod admin_config;
mod chat;
mod error;
mod execute;
mod launcher;
mod provider;
mod runs;
mod secrets;
mod sessions;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use garrison_agent::{AgentPaths, SandboxPolicy, SecretSet};
use garrison_contracts::openclawssy::{CreateRunRequest, RunRecord, V1RunStatus};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

pub use admin_config::{AgentConfig, ConfigSource, ProviderConfig};
pub use chat::ChatReply;
pub use error::OpenclawssyError;
pub use provider::{EnvProvider, ProviderStatus};
pub use runs::{RunSummary, StoredRun};
pub use secrets::{KEY_FILE_SETTING, MASTER_KEY_ENV, MasterKey};
pub use sessions::{SessionFilter, SessionInfo, StoredMessage};

use admin_config::ConfigStore;
use runs::RunStore;
use secrets::SecretStore;
use sessions::SessionStore;

/// Runs that execute at once by default; more wait `queued`.
pub const DEFAULT_CONCURRENT_RUNS: usize = 4;
/// How many runs `GET /api/admin/status` lists.
pub const STATUS_RUNS: usize = 50;

/// How the service is set up (the data dir is given to [`Openclawssy::open`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The provider when the config names none (`GARRISON_LLM_*`).
    pub env_provider: Option<EnvProvider>,
    /// Runs executing at once; at least 1.
    pub max_concurrent_runs: usize,
    /// The secret store's key (`GARRISON_MASTER_KEY` or `[secrets]
    /// key_file`, resolved with [`MasterKey::resolve`]); `None`: nothing can
    /// be stored, and an encrypted store does not open.
    pub master_key: Option<MasterKey>,
    /// Where the store publishes its values whenever they change, for
    /// others that scrub them (orchestration's units).
    pub secrets: SecretSet,
    /// The base policy of the sandbox `shell.exec` runs programs in
    /// (`[sandbox]`: limits, required protections); the agent config's
    /// `sandbox` and `network` switches and the data dir are added per run.
    pub sandbox: SandboxPolicy,
}

impl Default for Settings {
    /// No environment provider, the default concurrency, no master key.
    fn default() -> Settings {
        Settings {
            env_provider: None,
            max_concurrent_runs: DEFAULT_CONCURRENT_RUNS,
            master_key: None,
            secrets: SecretSet::new(),
            sandbox: SandboxPolicy::default(),
        }
    }
}

/// A run to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRun {
    pub agent_id: String,
    pub message: String,
    /// The record's `source`: `http`, `chat`, `scheduler`, …
    pub source: String,
    /// The chat session the run answers in: its messages are the run's
    /// history, and the run's messages are appended to it.
    pub session_id: Option<String>,
}

/// A queued run.
#[derive(Debug, Clone)]
pub struct Started {
    pub run_id: String,
    /// Becomes `Some(record)` once the run has ended and its record is
    /// stored.
    pub finished: watch::Receiver<Option<RunRecord>>,
}

/// `GET /api/admin/status`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AdminStatus))]
pub struct Status {
    /// The newest runs, newest first.
    pub runs: Vec<RunSummary>,
    /// The provider a run started now would use; `null` when none is set.
    pub provider: Option<ProviderStatus>,
    /// Where the agent config came from when it was loaded.
    pub config_source: ConfigSource,
    /// How many secrets are stored (names at `/api/admin/secrets`).
    pub secrets: usize,
}

/// The run service. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Openclawssy {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    env_provider: Option<EnvProvider>,
    slots: Arc<Semaphore>,
    runs: RunStore,
    sessions: SessionStore,
    config: ConfigStore,
    secrets: SecretStore,
    secret_set: SecretSet,
    sandbox: SandboxPolicy,
    closed: AtomicBool,
}

impl std::fmt::Debug for Openclawssy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Openclawssy")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl Openclawssy {
    /// Loads the state under the data dir. Runs that a previous process
    /// left `queued`/`running` are recorded as failed.
    /// Everything lives under `<data_dir>/agents/`, the secret store in
    /// `<data_dir>/secrets.json`.
    pub fn open(
        data_dir: impl Into<PathBuf>,
        settings: Settings,
    ) -> Result<Openclawssy, OpenclawssyError> {
        let data_dir = data_dir.into();
        let inner = Inner {
            runs: RunStore::open(&data_dir)?,
            sessions: SessionStore::open(&data_dir)?,
            config: ConfigStore::open(&data_dir),
            secrets: SecretStore::open(&data_dir, settings.master_key, settings.secrets.clone())?,
            secret_set: settings.secrets,
            sandbox: settings.sandbox,
            slots: Arc::new(Semaphore::new(settings.max_concurrent_runs.max(1))),
            env_provider: settings.env_provider,
            closed: AtomicBool::new(false),
            data_dir,
        };
        Ok(Openclawssy {
            inner: Arc::new(inner),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Queues a run for `agent_id`: creates its workspace, records the run
    /// as `queued` and starts it in the background.
    pub async fn start_run(&self, req: StartRun) -> Result<Started, OpenclawssyError> {
        CreateRunRequest {
            agent_id: req.agent_id.clone(),
            message: req.message.clone(),
        }
        .validate()
        .map_err(|e| OpenclawssyError::Invalid(e.reason))?;
        let paths = agent_paths(&self.inner.data_dir, &req.agent_id)?;
        if req.source.trim().is_empty() {
            return Err(OpenclawssyError::Invalid("source is required".into()));
        }
        if let Some(sid) = &req.session_id
            && self.inner.sessions.agent_of(sid).as_deref() != Some(req.agent_id.as_str())
        {
            return Err(OpenclawssyError::NotFound(format!(
                "no session `{sid}` for agent `{}`",
                req.agent_id
            )));
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(OpenclawssyError::Unavailable(
                "the server is shutting down; no new runs start".into(),
            ));
        }
        std::fs::create_dir_all(&paths.workspace)
            .map_err(|e| OpenclawssyError::io(&paths.workspace, e))?;
        let run_id = format!("run_{}", ulid::Ulid::new().to_string().to_lowercase());
        let bundle = self.inner.runs.bundle(&req.agent_id, &run_id);
        let run = StoredRun {
            record: RunRecord {
                id: run_id.clone(),
                agent_id: req.agent_id.clone(),
                source: req.source.clone(),
                status: V1RunStatus::Queued,
                output: None,
                artifact_path: Some(bundle.display().to_string()),
                duration_ms: None,
                tool_calls: 0,
                provider: None,
                model: None,
                error: None,
                trace: None,
            },
            session_id: req.session_id.clone(),
            created_at: now(),
            started_at: None,
            finished_at: None,
        };
        let handles = self.inner.runs.create(run)?;
        tracing::info!(run = %run_id, agent = %req.agent_id, source = %req.source, "run queued");
        let task = tokio::spawn(execute::execute(
            self.clone(),
            run_id.clone(),
            req,
            handles.cancel,
        ));
        self.inner.runs.attach(&run_id, task);
        Ok(Started {
            run_id,
            finished: handles.finished,
        })
    }

    /// A run's record (live while it runs, stored once it ended).
    pub fn run(&self, run_id: &str) -> Result<StoredRun, OpenclawssyError> {
        self.inner.runs.get(run_id)
    }

    /// The config in force.
    pub fn config(&self) -> AgentConfig {
        self.inner.config.get()
    }

    /// Validates and stores a new config.
    pub fn set_config(&self, config: AgentConfig) -> Result<(), OpenclawssyError> {
        self.inner.config.set(config)
    }

    /// The stored secrets' values as a shared redactor (the set given in
    /// [`Settings::secrets`]).
    pub fn secret_set(&self) -> SecretSet {
        self.inner.secret_set.clone()
    }

    /// Stores a secret (one-way).
    pub fn put_secret(&self, name: &str, value: &str) -> Result<(), OpenclawssyError> {
        self.inner.secrets.put(name, value)
    }

    /// The stored secrets' names.
    pub fn secret_names(&self) -> Vec<String> {
        self.inner.secrets.names()
    }

    /// Recent runs and the selected provider.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let provider = provider::select(
            &inner.config.get(),
            inner.env_provider.as_ref(),
            &inner.secrets,
        );
        Status {
            runs: inner.runs.recent(STATUS_RUNS),
            provider: provider.map(|p| p.status()),
            config_source: inner.config.source(),
            secrets: inner.secrets.names().len(),
        }
    }

    /// Sessions matching `filter`, most recently active first.
    pub fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>, OpenclawssyError> {
        self.inner.sessions.list(filter)
    }

    /// A session's messages in order.
    pub fn session_messages(
        &self,
        session_id: &str,
    ) -> Result<Vec<StoredMessage>, OpenclawssyError> {
        self.inner.sessions.messages(session_id)
    }

    /// Refuses new runs, cancels the live ones and waits up to `timeout`
    /// for them to store their final records.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let tasks = self.inner.runs.cancel_all();
        if tasks.is_empty() {
            return;
        }
        tracing::info!(runs = tasks.len(), "cancelling live runs");
        if tokio::time::timeout(timeout, futures_util::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!("runs still live at shutdown; a restart records them as interrupted");
        }
    }
}

/// Opens the secret store of `data_dir` with `key` and publishes its values
/// to `into`, for processes that run units without the `/v1` run service
/// (`garrison run`, `garrison worker`): their units scrub the values too.
/// Returns how many values were published. Fails as [`Openclawssy::open`]
/// does: an encrypted store without its key, a plaintext one without any.
pub fn publish_stored_secrets(
    data_dir: &Path,
    key: Option<MasterKey>,
    into: &SecretSet,
) -> Result<usize, OpenclawssyError> {
    let store = SecretStore::open(data_dir, key, into.clone())?;
    Ok(store.names().len())
}

/// The current time as RFC 3339 UTC with exactly six fractional digits, so
/// stored times sort as strings.
pub(crate) fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

/// The agent's layout, with a clear error for an unusable id.
fn agent_paths(data_dir: &Path, agent_id: &str) -> Result<AgentPaths, OpenclawssyError> {
    AgentPaths::new(data_dir, agent_id).map_err(|_| {
        OpenclawssyError::Invalid(format!(
            "agent_id `{agent_id}` may hold only letters, digits, `.`, `_` and `-` (at most 128)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_contracts::openclawssy::ChatMessageRequest;

    fn start(agent: &str, session_id: Option<String>) -> StartRun {
        StartRun {
            agent_id: agent.into(),
            message: "Generate status report".into(),
            source: "scheduler".into(),
            session_id,
        }
    }

    /// The scheduler's entry point: a run without any provider still ends
    /// in a stored, audited record that its waiter receives.
    #[tokio::test]
    async fn a_started_run_always_ends_in_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let svc = Openclawssy::open(dir.path(), Settings::default()).unwrap();
        let mut started = svc.start_run(start("agent_default", None)).await.unwrap();
        assert!(dir.path().join("agents/agent_default/workspace").is_dir());
        let record = started
            .finished
            .wait_for(Option::is_some)
            .await
            .unwrap()
            .clone()
            .unwrap();
        assert_eq!(record.id, started.run_id);
        assert_eq!(record.source, "scheduler");
        assert_eq!(record.status, V1RunStatus::Failed);
        assert!(
            record
                .error
                .as_deref()
                .unwrap()
                .contains("GARRISON_LLM_BASE_URL"),
            "{record:?}"
        );
        let stored = svc.run(&started.run_id).unwrap();
        assert_eq!(stored.record, record);
        assert!(stored.finished_at.is_some());
        let bundle = dir
            .path()
            .join("agents/agent_default/runs")
            .join(&started.run_id);
        assert!(bundle.join("record.json").is_file());
        let kinds: Vec<String> =
            garrison_files::read_lines::<serde_json::Value>(&bundle.join("events.jsonl"))
                .unwrap()
                .iter()
                .map(|e| e["event_type"].as_str().unwrap().to_string())
                .collect();
        assert_eq!(kinds, ["run.created", "run.started", "run.failed"]);
        assert_eq!(svc.status().runs[0].id, started.run_id);

        for bad in [
            start("../x", None),
            start("a b", None),
            StartRun {
                message: " ".into(),
                ..start("agent_default", None)
            },
            StartRun {
                source: String::new(),
                ..start("agent_default", None)
            },
        ] {
            assert!(matches!(
                svc.start_run(bad).await,
                Err(OpenclawssyError::Invalid(_))
            ));
        }
        assert!(matches!(
            svc.start_run(start("agent_default", Some("session_nope".into())))
                .await,
            Err(OpenclawssyError::NotFound(_))
        ));
        // A session belongs to its agent.
        let reply = svc
            .chat(ChatMessageRequest {
                user_id: "u".into(),
                room_id: None,
                channel: None,
                agent_id: "agent_default".into(),
                message: "/new".into(),
            })
            .await
            .unwrap();
        let ChatReply::Immediate {
            session_id: Some(sid),
            ..
        } = reply
        else {
            panic!("{reply:?}");
        };
        assert!(matches!(
            svc.start_run(start("other_agent", Some(sid))).await,
            Err(OpenclawssyError::NotFound(_))
        ));

        svc.shutdown(Duration::from_secs(5)).await;
        assert!(matches!(
            svc.start_run(start("agent_default", None)).await,
            Err(OpenclawssyError::Unavailable(_))
        ));
    }

    /// Shutdown cancels a run stuck on its model and stores its record.
    #[tokio::test]
    async fn shutdown_cancels_live_runs_and_stores_them() {
        // Accepts connections and never answers: the model request hangs.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                conns.push(c);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            env_provider: Some(EnvProvider {
                base_url: format!("http://{addr}/v1"),
                model: "m".into(),
                api_key: None,
            }),
            ..Settings::default()
        };
        let svc = Openclawssy::open(dir.path(), settings.clone()).unwrap();
        let mut started = svc.start_run(start("agent_default", None)).await.unwrap();
        // Wait until the run is in its model request.
        let events = dir
            .path()
            .join("agents/agent_default/runs")
            .join(&started.run_id)
            .join("events.jsonl");
        for _ in 0..400 {
            if std::fs::read_to_string(&events).is_ok_and(|t| t.contains("model.requested")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            svc.run(&started.run_id).unwrap().record.status,
            V1RunStatus::Running
        );
        svc.shutdown(Duration::from_secs(10)).await;
        let record = started.finished.borrow_and_update().clone().unwrap();
        assert_eq!(record.status, V1RunStatus::Cancelled);
        held.abort();
        // Stored as such: a new process reads it back unchanged.
        let again = Openclawssy::open(dir.path(), settings).unwrap();
        assert_eq!(again.run(&started.run_id).unwrap().record, record);
    }

    #[test]
    fn times_have_a_fixed_width() {
        let t = super::now();
        assert_eq!(t.len(), "2026-02-15T00:00:00.000000Z".len(), "{t}");
        assert!(t.ends_with('Z'));
        assert!(t.parse::<jiff::Timestamp>().is_ok());
    }
}
