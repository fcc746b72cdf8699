//! `garrison serve`: run the services over one ledger until SIGTERM/Ctrl-C.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use garrison_orchestration::Roles;
use garrison_server::{Ready, ServeConfig, TokenSource};

use crate::config::{Global, Settings};

/// Every service docs/interface.md names, and whether this build has it.
const SERVICES: &[(&str, bool)] = &[
    ("all", true),
    ("ledger", true),
    ("gateway", true),
    ("co", true),
    ("vault", true),
    ("worker", true),
    ("observer", true),
    ("integration", true),
    ("duty", true),
    ("sentinel", true),
    ("patrols", true),
    ("learning", false),
    ("milestones", true),
    ("scheduler", true),
    ("v1", true),
];

/// The orchestration roles a service list selects (`all` or an empty list:
/// every one).
pub fn roles(services: &[String]) -> Roles {
    if services.is_empty() {
        return Roles::ALL;
    }
    let mut roles = Roles::NONE;
    for s in services {
        roles.select(s);
    }
    roles
}

/// A known service name (clap rejects the rest with its usual error).
pub fn parse_service(name: &str) -> Result<String, String> {
    let name = name.trim();
    if SERVICES.iter().any(|(n, _)| *n == name) {
        Ok(name.to_string())
    } else {
        let known: Vec<&str> = SERVICES.iter().map(|(n, _)| *n).collect();
        Err(format!(
            "unknown service `{name}` (known: {})",
            known.join(", ")
        ))
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  garrison serve
  garrison serve --listen 127.0.0.1:9000 --data-dir /var/lib/garrison
  GARRISON_API_TOKEN=… garrison serve --listen 0.0.0.0:7878
  garrison serve --database-url postgres://garrison@db/garrison --services ledger

The API token is GARRISON_API_TOKEN when set; otherwise serve creates a random
one on first start in <data-dir>/api-token (mode 0600) and prints where. Every
route except GET /health, GET /healthz and the HMAC-signed milestone ingest
needs `Authorization: Bearer <token>`. A non-loopback --listen is refused
unless GARRISON_API_TOKEN is set.

With `[milestones] targets = [\"http://…/internal/milestones/ingest\"]` in
garrison.toml (max_attempts, default 3; backoff_ms, default 500), serve also
delivers run completed/failed, integrated and escalation events as signed
milestones to every target, signed with GARRISON_MILESTONE_SECRET (or a
table-form target's secret_env); a target without a secret is refused.

The orchestration services are gateway (POST /chat), co (runs: create, plan,
dispatch, synthesize), vault (theaters, worktrees), worker (the in-process
pool, POST /jobs and the remote-worker claim/heartbeat/report routes),
observer, duty (lease expiry and reissues), sentinel, and integration (gates
and merge); `patrols` names observer, duty and sentinel together. They read
[orchestration], [profiles.NAME] and [gates]. A route of a service this node
does not run answers 503. The ledger and event routes run on every node.

Scale-out: any number of nodes (and remote workers) may share one PostgreSQL
ledger with different --services. Claims are exclusive across nodes (each
one commits with its lease in one transaction), leases live in the database
so any node with `worker` takes heartbeats and reports for any lease, and
whichever nodes run `duty` reissue the leases of a node or worker that died.
Nodes that share theaters must share the data dir (worktrees live there).

  garrison serve --database-url $DB --listen 127.0.0.1:7878 --services gateway,co,ledger,worker,patrols
  garrison serve --database-url $DB --listen 127.0.0.1:7879 --services worker,patrols,integration

The Openclawssy surface (`v1`) serves POST /v1/runs, GET /v1/runs/{id},
POST /v1/chat/messages and /api/admin/* (status, config, secrets, chat
sessions). Runs work in <data-dir>/agents/<agent_id>/workspace with the
provider from POST /api/admin/config, else GARRISON_LLM_BASE_URL,
GARRISON_LLM_MODEL and GARRISON_LLM_API_KEY; secrets posted to
/api/admin/secrets live in <data-dir>/secrets.json (mode 0600), encrypted
with AES-256-GCM under the key in GARRISON_MASTER_KEY (64 hex characters or
base64 of 32 bytes) or in the file `[secrets] key_file` names (outside the
data dir); without a key nothing can be stored. Every stored value, and its
base64, hex and URL-encoded forms, is scrubbed from tool output before the
model sees it and from everything Garrison writes.

Scheduler jobs (`garrison jobs`, /api/admin/jobs) are served by every node
and fired by nodes running both `scheduler` and `v1` (both part of `all`):
each fire starts a /v1 run of the job's agent.

SIGTERM or Ctrl-C stops accepting, finishes in-flight requests and flushes the
ledger before exiting.")]
pub struct ServeArgs {
    /// Address to listen on [config: listen, env: GARRISON_LISTEN] [default: 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Services to run, comma-separated [default: all]
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_service)]
    pub services: Vec<String>,
}

pub fn run(global: &Global, args: ServeArgs) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let services = if args.services.is_empty() {
        match &settings.services {
            Some(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_service)
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        }
    } else {
        args.services
    };
    let missing: Vec<&String> = services
        .iter()
        .filter(|s| SERVICES.iter().any(|(n, ok)| n == s && !ok))
        .collect();
    if !missing.is_empty() {
        for s in missing {
            eprintln!(
                "garrison: service `{s}` is not yet available in this build (available: all, ledger, milestones, scheduler, v1 and the orchestration services)"
            );
        }
        return Ok(ExitCode::from(2));
    }

    // Refused before anything starts: a target without a secret cannot sign.
    let runs_milestones =
        services.is_empty() || services.iter().any(|s| s == "all" || s == "milestones");
    let outbox = if runs_milestones {
        settings.outbox.resolve()?
    } else {
        garrison_server::OutboxConfig::default()
    };
    // The secret store's key: a malformed one stops here, before anything starts.
    let master_key = settings.master_key()?;
    let mut config = ServeConfig::new(settings.data_dir);
    config.listen = args.listen.unwrap_or(settings.listen);
    config.database_url = settings.database_url;
    config.token = settings.api_token;
    config.body_limit = settings.body_limit;
    config.milestones = settings.milestones;
    config.outbox = outbox;
    // Each orchestration service runs where it is named; the queue index and
    // the follower run wherever any of them does.
    let roles = roles(&services);
    config.orchestration = roles.any().then(|| {
        let mut o = settings.orchestration;
        o.roles = roles;
        o
    });
    // The /v1 run service and admin API; its default provider comes from GARRISON_LLM_*.
    let runs_v1 = services.is_empty() || services.iter().any(|s| s == "all" || s == "v1");
    config.openclawssy = runs_v1.then(|| garrison_server::OpenclawssySettings {
        env_provider: garrison_server::EnvProvider::from_env(),
        master_key,
        sandbox: settings.sandbox.clone(),
        ..garrison_server::OpenclawssySettings::default()
    });
    // Every node serves the jobs API; only scheduler nodes fire jobs.
    config.fire_jobs =
        services.is_empty() || services.iter().any(|s| s == "all" || s == "scheduler");
    let runtime = crate::runtime()?;
    runtime.block_on(garrison_server::serve(config, shutdown_signal(), announce))?;
    Ok(ExitCode::SUCCESS)
}

fn announce(ready: &Ready) {
    println!("garrison listening on http://{}", ready.addr);
    println!(
        "dashboard: http://{}/ (sign in with the API token)",
        ready.addr
    );
    match &ready.token_source {
        TokenSource::Explicit => println!("api token: from GARRISON_API_TOKEN"),
        TokenSource::Stored(p) => println!("api token: {}", p.display()),
        TokenSource::Generated(p) => {
            println!(
                "api token: generated and stored in {} (mode 0600)",
                p.display()
            )
        }
    }
    tracing::info!(backend = ready.backend, "ready");
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still works.
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let int = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = term => {}
        _ = int => {}
    }
    eprintln!("garrison: shutting down");
}
