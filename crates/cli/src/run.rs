//! `garrison run OBJECTIVE`: one run from the terminal, in-process, with
//! live progress; prints the reply and where the work landed, then the JSON
//! summary line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use garrison_contracts::ironclaw::RunStatus;
use garrison_lifecycle::Services;
use garrison_orchestration::{CreateRun, Orchestrator, PlanSource, Pool};
use serde_json::Value;

use crate::config::{Global, Settings};

#[derive(Debug, Args)]
#[command(after_help = "\
The run's orders execute in their own git worktrees of the theater repository
(--repo, else the data dir's default theater), pass the configured gates
([gates] default in garrison.toml) and are merged into its checked-out branch.

Plan files (JSON or TOML): {\"orders\":[{\"id\",\"objective\",\"depends_on\":[ids],
\"lock_scope\":[paths],\"profile\"?,\"type\"?,\"inputs\"?,\"acceptance_criteria\"?,
\"constraints\"?}]}. Without --plan the configured planner profile plans the run,
or the objective becomes one order.

The model profile `llm` comes from GARRISON_LLM_BASE_URL (including /v1),
GARRISON_LLM_MODEL and GARRISON_LLM_API_KEY; more profiles are [profiles.NAME]
tables (kind = \"llm\" | \"command\" | \"scripted\").

Examples:
  garrison run \"Add a CONTRIBUTING.md\" --repo . --profile llm
  garrison run \"Refactor the parser\" --repo ~/src/app --plan plan.json
  garrison run \"Summarise the repo\" --repo . --profile claude   # a [profiles.claude] command unit

Exit status: 0 when the run is COMPLETE, 1 otherwise.")]
pub struct RunArgs {
    /// What the run should achieve
    pub objective: String,
    /// Theater repository to work in (created when missing)
    #[arg(long, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// Plan file (JSON or TOML) instead of asking the planner
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Unit profile for the orders (default: [orchestration] default_profile, else `llm`)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Give up waiting after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
}

pub fn run(global: &Global, args: RunArgs) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let plan = args.plan.as_deref().map(read_plan).transpose()?;
    if let Some(p) = &args.profile
        && !settings.orchestration.profiles.contains_key(p)
    {
        bail!(
            "profile `{p}` is not configured (known: {}); the `llm` profile needs GARRISON_LLM_BASE_URL and GARRISON_LLM_MODEL",
            settings
                .orchestration
                .profiles
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // The units scrub the stored secrets' values too.
    let orch_settings = settings.orchestration_with_secrets()?;
    let rt = crate::runtime()?;
    rt.block_on(async move {
        let ledger = crate::local::open_ledger(&settings).await?;
        let mut orch_settings = orch_settings;
        if let Some(p) = &args.profile {
            orch_settings.default_profile = p.clone();
        }
        let orch = Orchestrator::new(ledger.clone(), orch_settings);
        let result = drive(&orch, &args, plan).await;
        ledger.close().await?;
        result
    })
}

async fn drive(orch: &Arc<Orchestrator>, args: &RunArgs, plan: Option<Value>) -> Result<ExitCode> {
    orch.restore().await?;
    let theater_hint = match &args.repo {
        Some(repo) => {
            let id = theater_id_for(repo);
            orch.theaters
                .open(&id, Some(repo))
                .await
                .with_context(|| format!("cannot use {} as a theater", repo.display()))?;
            Some(id)
        }
        None => None,
    };
    let run = orch
        .create_run(&CreateRun {
            user_id: std::env::var("USER").ok(),
            theater_hint,
            objective: args.objective.clone(),
        })
        .await?;
    let source = match (plan, &orch.settings.planner_profile) {
        (Some(p), _) => PlanSource::Plan(p),
        (None, Some(planner)) if args.profile.is_none() => PlanSource::Planner(planner.clone()),
        (None, _) => PlanSource::Single {
            profile: args.profile.clone(),
        },
    };
    let planned = orch.plan(&run.run_id, source).await?;
    eprintln!(
        "garrison: run {} — {} order(s) in theater `{}`",
        run.run_id,
        planned.len(),
        run.theater_id.as_deref().unwrap_or("")
    );
    let services = Services::new();
    let workers = Pool::new(orch.clone()).start(services.signal());
    orch.dispatch(&run.run_id).await?;
    let ended = crate::progress::follow(orch, &run.run_id, Duration::from_secs(args.timeout)).await;
    // The workers finish what they hold: nothing is left running behind
    // the summary.
    services.stopper().send_replace(true);
    for w in workers {
        w.join().await;
    }
    let ended = ended?;
    let doc = crate::summary::summary(orch, &ended).await?;
    crate::summary::print_human(&doc);
    println!("{doc}");
    Ok(if ended.status == RunStatus::Complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A theater id for a repository: its directory name, made id-safe.
fn theater_id_for(repo: &Path) -> String {
    let name = repo
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| repo.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = id.trim_matches('-');
    if id.is_empty() {
        "repo".into()
    } else {
        id.chars().take(64).collect()
    }
}

/// A plan file: JSON, or TOML when it ends in `.toml`.
fn read_plan(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read plan {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let v: toml::Value = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        serde_json::to_value(v).context("plan TOML")
    } else {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    }
}
