//! `garrison demo`: the offline end-to-end demo on the embedded store.
//!
//! It serves the API on a free loopback port with the orchestration and the
//! milestone outbox (signing with a secret made for this demo and delivering
//! to its own ingest), plans a three-order run in the data dir's `demo`
//! theater — two independent orders with disjoint lock scopes (a scripted
//! model unit and a command unit) and a third depending on both — and lets
//! the in-process workers execute them in their own worktrees, gate them and
//! merge them. It then prints the reply, the milestones its ingest accepted
//! and the JSON summary line, and keeps serving until Ctrl-C (`--exit` stops).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use garrison_agent::{PromptMode, UnitProfile};
use garrison_contracts::ironclaw::{EventType, RunStatus};
use garrison_ledger::Query;
use garrison_orchestration::{CreateRun, GateCommand, Orchestrator, PlanSource};
use garrison_server::{OutboxConfig, Ready, ServeConfig};
use serde_json::{Value, json};

use crate::config::{Global, Settings};

#[derive(Debug, Args)]
#[command(after_help = "\
Everything stays on this machine: the embedded SQLite ledger and a git theater
repository under the data dir (<data-dir>/theaters/demo/repo), no model server
and no network beyond loopback. Run it again to add another run to the same
theater.

Examples:
  garrison demo --exit
  garrison demo --data-dir /tmp/garrison-demo")]
pub struct DemoArgs {
    /// Stop after printing the summary instead of serving until Ctrl-C
    #[arg(long)]
    pub exit: bool,
}

const OBJECTIVE: &str =
    "Write a field report on the demo theater: survey it, inventory it, then report";

pub fn run(global: &Global, args: DemoArgs) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    if settings.database_url.is_some() {
        eprintln!("garrison demo: runs on the embedded store; ignoring the database URL");
    }
    let data_dir = settings.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let assets = write_assets(&data_dir.join("demo"))?;

    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let port = free_port()?;
    let ingest = format!("http://127.0.0.1:{port}/internal/milestones/ingest");

    let mut orch = settings.orchestration.clone();
    orch.profiles.extend(assets);
    orch.default_profile = "survey".into();
    orch.lease = Duration::from_secs(15);
    orch.patrol_interval = Duration::from_secs(2);
    orch.gates.insert(
        "default".into(),
        vec![GateCommand {
            name: "whitespace".into(),
            command: vec![
                "git".into(),
                "diff".into(),
                "--check".into(),
                "HEAD~1".into(),
                "HEAD".into(),
            ],
            timeout_secs: 60,
        }],
    );
    let mut config = ServeConfig::new(&data_dir);
    config.listen = format!("127.0.0.1:{port}");
    config.token = settings.api_token.clone();
    config.milestones = settings.milestones.clone();
    config.milestones.secret = Some(secret.clone().into_bytes());
    config.outbox = OutboxConfig {
        targets: vec![garrison_server::MilestoneTarget::new(
            &ingest,
            secret.into_bytes(),
        )?],
        max_attempts: 3,
        backoff: Duration::from_millis(200),
        ..OutboxConfig::default()
    };
    config.orchestration = Some(orch);
    // A data dir with stored secrets opens only with their key.
    if let Some(o) = config.openclawssy.as_mut() {
        o.master_key = settings.master_key()?;
    }
    config.drain_timeout = Duration::from_secs(5);

    let rt = crate::runtime()?;
    rt.block_on(async move {
        let garrison_server::Spawned { ready, stop, task } = garrison_server::spawn(config).await?;
        let orch = ready
            .orchestrator
            .clone()
            .ok_or_else(|| anyhow!("orchestration did not start"))?;
        let outcome = demo_run(&orch, &ready).await;
        if outcome.is_ok() && !args.exit {
            eprintln!(
                "garrison demo: serving http://{} until Ctrl-C (API token: {})",
                ready.addr,
                token_hint(&ready)
            );
            eprintln!(
                "garrison demo: dashboard http://{}/ (sign in with that token)",
                ready.addr
            );
            let _ = tokio::signal::ctrl_c().await;
        }
        let _ = stop.send(());
        task.await.map_err(|e| anyhow!("server task: {e}"))??;
        outcome
    })
}

async fn demo_run(orch: &std::sync::Arc<Orchestrator>, ready: &Ready) -> Result<ExitCode> {
    eprintln!(
        "garrison demo: API on http://{} ({} ledger)",
        ready.addr, ready.backend
    );
    let run = orch
        .create_run(&CreateRun {
            user_id: Some("demo".into()),
            theater_hint: Some("demo".into()),
            objective: OBJECTIVE.into(),
        })
        .await?;
    let planned = orch.plan(&run.run_id, PlanSource::Plan(plan())).await?;
    eprintln!(
        "garrison demo: run {} planned with {} orders",
        run.run_id,
        planned.len()
    );
    orch.dispatch(&run.run_id).await?;
    let ended = crate::progress::follow(orch, &run.run_id, Duration::from_secs(300)).await?;
    let milestones = await_milestones(orch, &run.run_id, planned.len() + 1).await?;
    let mut doc = crate::summary::summary(orch, &ended).await?;
    doc["milestones"] = milestones;
    doc["api"] = json!(format!("http://{}", ready.addr));
    doc["dashboard"] = json!(format!("http://{}/", ready.addr));
    crate::summary::print_human(&doc);
    println!(
        "Milestones accepted by this node's own ingest: {}",
        doc["milestones"]["accepted"]
    );
    println!("{doc}");
    Ok(if ended.status == RunStatus::Complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Waits (bounded) until the outbox has delivered `expected` milestones for
/// this run to our own ingest, and reports what the ingest accepted.
async fn await_milestones(orch: &Orchestrator, run_id: &str, expected: usize) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let received = orch
            .ledger
            .read(&Query {
                event_type: Some(EventType::MilestoneReceived),
                ..Query::default()
            })
            .await?;
        let ours: Vec<&garrison_ledger::Record> = received
            .iter()
            .filter(|r| r.payload.to_string().contains(run_id))
            .collect();
        if ours.len() >= expected || tokio::time::Instant::now() >= deadline {
            return Ok(json!({
                "expected": expected,
                "accepted": ours.len(),
                "ids": ours.iter().map(|r| r.payload.pointer("/event/milestoneId").cloned().unwrap_or(Value::Null)).collect::<Vec<_>>(),
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn token_hint(ready: &Ready) -> String {
    match &ready.token_source {
        garrison_server::TokenSource::Explicit => "GARRISON_API_TOKEN".into(),
        garrison_server::TokenSource::Stored(p) | garrison_server::TokenSource::Generated(p) => {
            p.display().to_string()
        }
    }
}

/// The demo plan: survey and inventory in parallel (disjoint locks), then
/// the report, which reads what both merged.
fn plan() -> Value {
    json!({"orders": [
        {"id": "survey", "objective": "Survey the theater and write docs/survey.md",
         "depends_on": [], "lock_scope": ["docs/survey.md"], "profile": "survey", "type": "research"},
        {"id": "inventory", "objective": "Inventory the tracked files into docs/inventory.md",
         "depends_on": [], "lock_scope": ["docs/inventory.md"], "profile": "inventory", "type": "code"},
        {"id": "report", "objective": "Write docs/report.md from the survey and the inventory",
         "depends_on": ["survey", "inventory"], "lock_scope": ["docs/report.md"], "profile": "report", "type": "draft",
         "acceptance_criteria": ["docs/report.md cites the survey and the inventory"]}
    ]})
}

fn call(id: &str, name: &str, args: Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
}

/// Writes the recorded model turns and returns the demo's unit profiles.
fn write_assets(dir: &Path) -> Result<BTreeMap<String, UnitProfile>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let survey = json!({"turns": [
        {"content": null, "tool_calls": [call("c1", "fs_list", json!({"path": "."}))]},
        {"content": null, "tool_calls": [
            call("c2", "fs_write", json!({"path": "docs/survey.md", "content":
                "# Survey\n\nThe demo theater is a git repository Garrison created for this demo.\n\
                 Every order works in its own worktree and branch; integration merges it back.\n"})),
            call("c3", "fs_write", json!({"path": "outputs/survey-notes.txt", "content":
                "Listed the worktree root and wrote docs/survey.md.\n"})),
        ]},
        {"content": "Surveyed the theater and wrote docs/survey.md."}
    ]});
    let report = json!({"turns": [
        {"content": null, "tool_calls": [
            call("c1", "fs_read", json!({"path": "docs/survey.md"})),
            call("c2", "fs_read", json!({"path": "docs/inventory.md"})),
        ]},
        {"content": null, "tool_calls": [
            call("c3", "fs_write", json!({"path": "docs/report.md", "content":
                "# Field report\n\nSources: docs/survey.md (survey) and docs/inventory.md (inventory),\n\
                 both merged into the mainline before this order started.\n"})),
            call("c4", "fs_write", json!({"path": "outputs/report-notes.txt", "content":
                "Read the survey and the inventory, wrote docs/report.md.\n"})),
        ]},
        {"content": "Wrote docs/report.md from the survey and the inventory."}
    ]});
    let survey_path = dir.join("survey.json");
    let report_path = dir.join("report.json");
    std::fs::write(&survey_path, serde_json::to_vec_pretty(&survey)?)?;
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)?;
    let inventory = "mkdir -p docs outputs && cat > outputs/prompt.txt && \
        { echo '# Inventory'; echo; git ls-files | sed 's/^/- /'; } > docs/inventory.md && \
        echo \"Listed $(git ls-files | wc -l | tr -d ' ') tracked files into docs/inventory.md.\"";
    let mut profiles = BTreeMap::new();
    profiles.insert(
        "survey".to_string(),
        UnitProfile::Scripted {
            script: survey_path,
        },
    );
    profiles.insert(
        "report".to_string(),
        UnitProfile::Scripted {
            script: report_path,
        },
    );
    profiles.insert(
        "inventory".to_string(),
        UnitProfile::Command {
            program: "sh".into(),
            args: vec!["-c".into(), inventory.into()],
            prompt: PromptMode::Stdin,
            env: BTreeMap::new(),
            sandbox: Default::default(),
        },
    );
    Ok(profiles)
}

fn free_port() -> Result<u16> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(l.local_addr()?.port())
}
