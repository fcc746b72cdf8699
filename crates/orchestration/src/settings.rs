//! What the orchestration services are configured with (`garrison.toml`
//! `[orchestration]`, `[profiles.NAME]`, `[gates.NAME]`), with the defaults a
//! single machine needs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use garrison_agent::{SandboxPolicy, SecretSet, UnitProfile};
use serde::{Deserialize, Serialize};

/// One gate: a program run in the order's worktree; exit 0 passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCommand {
    pub name: String,
    /// Program and arguments (no shell unless the program is one).
    pub command: Vec<String>,
    #[serde(default = "default_gate_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_gate_timeout_secs() -> u64 {
    300
}

/// Worktree retention: integrated orders' worktrees are removed once more than
/// `keep_integrated` exist in a theater or they are older than `max_age_secs`;
/// failed orders' worktrees are always kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    pub keep_integrated: usize,
    pub max_age_secs: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_integrated: 20,
            max_age_secs: None,
        }
    }
}

/// Prepared before a unit runs in a fresh worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bootstrap {
    /// Untracked files of the theater repo to copy in (e.g. `.env`).
    pub copy: Vec<String>,
    /// A setup command run in the worktree (e.g. `["npm", "ci"]`).
    pub setup: Option<Vec<String>>,
}

/// Which orchestration services a node runs (`garrison serve --services`).
/// Every node with any of them keeps the queue index; the roles decide which
/// routes answer and which background tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Roles {
    /// `POST /chat`.
    pub gateway: bool,
    /// Runs: create, plan, dispatch, synthesize.
    pub co: bool,
    /// Theater and worktree routes.
    pub vault: bool,
    /// The in-process pool, `POST /jobs` and the remote-worker routes.
    pub worker: bool,
    pub observer: bool,
    /// The duty officer: lease expiry, reissues, deferred advances.
    pub duty: bool,
    pub sentinel: bool,
    /// Gates and promotion of completed orders.
    pub integration: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        gateway: true,
        co: true,
        vault: true,
        worker: true,
        observer: true,
        duty: true,
        sentinel: true,
        integration: true,
    };

    pub const NONE: Roles = Roles {
        gateway: false,
        co: false,
        vault: false,
        worker: false,
        observer: false,
        duty: false,
        sentinel: false,
        integration: false,
    };

    /// The service names that select roles: each role by its name, plus
    /// `patrols` (observer, duty officer and sentinel) and `all`.
    pub const NAMES: &'static [&'static str] = &[
        "gateway",
        "co",
        "vault",
        "worker",
        "observer",
        "duty",
        "sentinel",
        "patrols",
        "integration",
    ];

    /// Turns on what `name` selects; false for a name that is no role.
    pub fn select(&mut self, name: &str) -> bool {
        match name {
            "all" => *self = Roles::ALL,
            "gateway" => self.gateway = true,
            "co" => self.co = true,
            "vault" => self.vault = true,
            "worker" => self.worker = true,
            "observer" => self.observer = true,
            "duty" => self.duty = true,
            "sentinel" => self.sentinel = true,
            "patrols" => {
                self.observer = true;
                self.duty = true;
                self.sentinel = true;
            }
            "integration" => self.integration = true,
            _ => return false,
        }
        true
    }

    /// Whether the role called `name` runs here (`patrols`: any patrol).
    pub fn runs(&self, name: &str) -> bool {
        match name {
            "gateway" => self.gateway,
            "co" => self.co,
            "vault" => self.vault,
            "worker" => self.worker,
            "observer" => self.observer,
            "duty" => self.duty,
            "sentinel" => self.sentinel,
            "patrols" => self.observer || self.duty || self.sentinel,
            "integration" => self.integration,
            _ => false,
        }
    }

    pub fn any(&self) -> bool {
        *self != Roles::NONE
    }

    /// The roles that run, by name.
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("gateway", self.gateway),
            ("co", self.co),
            ("vault", self.vault),
            ("worker", self.worker),
            ("observer", self.observer),
            ("duty", self.duty),
            ("sentinel", self.sentinel),
            ("integration", self.integration),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
    }
}

impl Default for Roles {
    fn default() -> Self {
        Roles::ALL
    }
}

/// Everything the orchestration services need besides the ledger.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub garrison_id: String,
    /// The theater a run lands in when the caller gives no hint.
    pub default_theater: String,
    /// Unit profiles by name.
    pub profiles: BTreeMap<String, UnitProfile>,
    /// The profile an order without one runs under.
    pub default_profile: String,
    /// A profile that plans runs (must answer with the plan shape); `None`:
    /// one order per objective.
    pub planner_profile: Option<String>,
    /// Gate profiles by name; `default` is used when none is named.
    pub gates: BTreeMap<String, Vec<GateCommand>>,
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// Reissues allowed after the first attempt, unless an order says otherwise.
    pub max_retries: u32,
    /// Wall-clock budget of one attempt, unless an order says otherwise.
    pub order_budget: Duration,
    /// The observer flags an order RUNNING (or without new commits) this long.
    pub stuck_after: Duration,
    pub retention: Retention,
    pub bootstrap: Bootstrap,
    /// In-process worker tasks; 0 leaves execution to remote workers.
    pub workers: usize,
    /// How often `serve` ticks the duty officer and observer.
    pub patrol_interval: Duration,
    /// How often `serve` runs the sentinel; it escalates when the newest
    /// PATROL_TICK is older than three patrol intervals.
    pub sentinel_interval: Duration,
    /// How long a sync `POST /chat` waits for the run to end.
    pub chat_wait: Duration,
    /// The services this node runs (all by default).
    pub roles: Roles,
    /// The stored secrets' values (published by the secret store of the
    /// `/v1` run service on this node): every unit scrubs them, in every
    /// encoding, from what its model sees, its events and audit lines, its
    /// report (the AAR's summary and notes, the commit message) and the
    /// files it leaves under `outputs/`.
    pub secrets: SecretSet,
    /// The base policy of every unit's sandbox (`[sandbox]`); each unit adds
    /// the data dir to what it hides.
    pub sandbox: SandboxPolicy,
}

impl Settings {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let mut profiles = BTreeMap::new();
        if let Some(llm) = UnitProfile::llm_from_env() {
            profiles.insert("llm".to_string(), llm);
        }
        profiles.insert("noop".to_string(), UnitProfile::Noop);
        let mut gates = BTreeMap::new();
        gates.insert("default".to_string(), Vec::new());
        Settings {
            data_dir: data_dir.into(),
            garrison_id: "local".into(),
            default_theater: "demo".into(),
            profiles,
            default_profile: "llm".into(),
            planner_profile: None,
            gates,
            lease: Duration::from_secs(30),
            max_retries: 1,
            order_budget: Duration::from_secs(900),
            stuck_after: Duration::from_secs(1800),
            retention: Retention::default(),
            bootstrap: Bootstrap::default(),
            workers: 2,
            patrol_interval: Duration::from_secs(5),
            sentinel_interval: Duration::from_secs(30),
            chat_wait: Duration::from_secs(300),
            roles: Roles::ALL,
            secrets: SecretSet::new(),
            sandbox: SandboxPolicy::default(),
        }
    }

    /// The sentinel's limit on the age of the newest PATROL_TICK.
    pub fn max_tick_age(&self) -> Duration {
        self.patrol_interval.saturating_mul(3)
    }
}
