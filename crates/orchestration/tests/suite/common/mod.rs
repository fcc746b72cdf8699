//! A small harness for orchestration tests: a temp data dir, an embedded
//! ledger, in-process workers running shell-script units, and helpers to
//! read the ledger and the theater repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use garrison_agent::{PromptMode, UnitProfile};
use garrison_contracts::ironclaw::{EventType, OrderStatus, RunStatus};
use garrison_ledger::sqlite::SqliteLedger;
use garrison_ledger::{Ledger, OrderSnapshot, Query, Record, RunSnapshot};
use garrison_orchestration::{CreateRun, Orchestrator, PlanSource, PlannedOrder, Settings};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The theater every test run lands in.
pub const THEATER: &str = "t";

/// How long a test waits for a run to end before failing.
pub const RUN_BOUND: Duration = Duration::from_secs(45);

/// A command unit: `sh -c SCRIPT` in the order's worktree.
pub fn sh(script: &str) -> UnitProfile {
    UnitProfile::Command {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        prompt: PromptMode::Stdin,
        env: BTreeMap::new(),
        sandbox: Default::default(),
    }
}

/// [`sh`] that may also write `dir`: test scratch the test and its units
/// share (barriers), which the sandbox otherwise keeps out of reach.
pub fn sh_sharing(script: &str, dir: &Path) -> UnitProfile {
    let mut profile = sh(script);
    if let UnitProfile::Command { sandbox, .. } = &mut profile {
        sandbox.write.push(dir.to_path_buf());
    }
    profile
}

/// [`sh`] run unconfined: for a test that signals the unit by its host pid,
/// which a sandboxed unit (in its own PID namespace) cannot know.
pub fn sh_unconfined(script: &str) -> UnitProfile {
    let mut profile = sh(script);
    if let UnitProfile::Command { sandbox, .. } = &mut profile {
        sandbox.enabled = false;
    }
    profile
}

/// Test settings: short lease, quick patrols, two workers, the given profiles.
pub fn settings(data_dir: &Path, profiles: &[(&str, UnitProfile)]) -> Settings {
    let mut s = Settings::new(data_dir);
    s.default_theater = THEATER.into();
    s.default_profile = "noop".into();
    for (name, p) in profiles {
        s.profiles.insert((*name).to_string(), p.clone());
    }
    s.lease = Duration::from_secs(2);
    s.patrol_interval = Duration::from_millis(200);
    s.sentinel_interval = Duration::from_secs(3600);
    s.workers = 2;
    s
}

/// A running orchestrator with its workers and the temp dir it lives in.
pub struct Harness {
    /// Test scratch space (pid files, barriers); the data dir is `data/` inside.
    pub tmp: tempfile::TempDir,
    pub orch: Arc<Orchestrator>,
    shutdown: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

pub fn ledger_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger.db")
}

pub fn open_ledger(data_dir: &Path) -> Arc<dyn Ledger> {
    Arc::new(SqliteLedger::open(&ledger_path(data_dir)).unwrap())
}

impl Harness {
    /// A fresh temp dir; `configure` gets its data dir and scratch dir.
    pub fn start(configure: impl FnOnce(&Path, &Path) -> Settings) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let settings = configure(&data, &scratch);
        let orch = Orchestrator::new(open_ledger(&data), settings);
        let (shutdown, rx) = watch::channel(false);
        let handles = garrison_orchestration::spawn_workers(orch.clone(), rx);
        Harness {
            tmp,
            orch,
            shutdown,
            handles,
        }
    }

    pub fn scratch(&self) -> PathBuf {
        self.tmp.path().join("scratch")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// The theater repository (opened, so created, if need be).
    pub async fn repo(&self) -> PathBuf {
        self.orch.theaters.open(THEATER, None).await.unwrap().repo
    }

    /// Creates a run, plans it from `plan` and dispatches it. Returns the
    /// run id and its orders keyed by plan id.
    pub async fn launch(&self, plan: Value) -> (String, BTreeMap<String, PlannedOrder>) {
        let run = self
            .orch
            .create_run(&CreateRun {
                user_id: None,
                theater_hint: Some(THEATER.into()),
                objective: "integration test run".into(),
            })
            .await
            .unwrap();
        let planned = self
            .orch
            .plan(&run.run_id, PlanSource::Plan(plan))
            .await
            .unwrap();
        self.orch.dispatch(&run.run_id).await.unwrap();
        let by_plan = planned
            .into_iter()
            .map(|p| (p.plan_id.clone(), p))
            .collect();
        (run.run_id, by_plan)
    }

    /// Waits (bounded) for the run to end and asserts it ended as `want`.
    pub async fn finish(&self, run_id: &str, want: RunStatus) -> RunSnapshot {
        let run = self.orch.wait_run(run_id, RUN_BOUND).await.unwrap();
        if run.status != want {
            let orders = self.orch.ledger.run_orders(run_id).await.unwrap();
            let states: Vec<String> = orders
                .iter()
                .map(|o| {
                    format!(
                        "{} {:?} attempt {} integration {:?} reason {:?}",
                        o.objective.as_deref().unwrap_or(""),
                        o.status,
                        o.attempt,
                        o.integration,
                        o.reason
                    )
                })
                .collect();
            panic!(
                "run {run_id} ended {:?} within {RUN_BOUND:?}, expected {want:?}; orders:\n{}",
                run.status,
                states.join("\n")
            );
        }
        run
    }

    pub async fn order(&self, order_id: &str) -> OrderSnapshot {
        self.orch
            .ledger
            .order_snapshot(order_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no snapshot of order {order_id}"))
    }

    /// Every event of a run, oldest first.
    pub async fn run_events(&self, run_id: &str) -> Vec<Record> {
        self.orch
            .ledger
            .read(&Query {
                run_id: Some(run_id.to_string()),
                ..Query::default()
            })
            .await
            .unwrap()
    }

    /// Events of one type for one order, oldest first.
    pub async fn events(&self, order_id: &str, t: EventType) -> Vec<Record> {
        self.orch
            .ledger
            .read(&Query {
                order_id: Some(order_id.to_string()),
                event_type: Some(t),
                ..Query::default()
            })
            .await
            .unwrap()
    }

    /// The single event of type `t` for an order (fails on none or several).
    pub async fn one_event(&self, order_id: &str, t: EventType) -> Record {
        let mut found = self.events(order_id, t).await;
        assert_eq!(
            found.len(),
            1,
            "expected exactly one {t:?} for order {order_id}, got {found:#?}"
        );
        found.remove(0)
    }

    pub async fn assert_status(&self, order_id: &str, want: OrderStatus) -> OrderSnapshot {
        let o = self.order(order_id).await;
        assert_eq!(
            o.status, want,
            "order {order_id} ({:?}): reason {:?}",
            o.objective, o.reason
        );
        o
    }

    /// Stops the workers (bounded) and closes the ledger; the temp dir is
    /// handed back for a restart.
    pub async fn stop(self) -> tempfile::TempDir {
        let _ = self.shutdown.send(true);
        for h in self.handles {
            tokio::time::timeout(Duration::from_secs(40), h)
                .await
                .expect("a worker did not stop within 40 s")
                .unwrap();
        }
        self.orch.ledger.close().await.unwrap();
        self.tmp
    }
}

/// Runs git in `repo`; panics with its stderr on failure.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = git_output(repo, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs git in `repo` and returns whatever happened.
pub fn git_output(repo: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@localhost"])
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

/// `git show main:PATH`, or None when the mainline has no such file.
pub fn show_main(repo: &Path, path: &str) -> Option<String> {
    let out = git_output(repo, &["show", &format!("main:{path}")]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn main_sha(repo: &Path) -> String {
    git(repo, &["rev-parse", "main"]).trim().to_string()
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
