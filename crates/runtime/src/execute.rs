//! Carrying out one queued run: wait for a slot (and the session's turn),
//! run the agent loop in the agent's workspace, then store what it did.

use std::future::Future;
use std::path::PathBuf;

use garrison_agent::run::RunLimits;
use garrison_agent::tools::ToolLimits;
use garrison_agent::{
    AgentRun, AgentRunResult, AuditLog, EventSink, Lifecycle, Redactor, SandboxMode,
    SessionMessage, SessionRole, run_agent_with,
};
use garrison_contracts::openclawssy::{RunEvent, RunEventType, V1RunStatus};
use serde_json::{Map, json};
use tokio::sync::watch;

use super::runs::{EVENTS_FILE, StoredRun};
use super::{Openclawssy, StartRun, agent_paths, provider};

/// Appends each lifecycle event (already redacted) to the run bundle's
/// `events.jsonl`.
struct BundleEvents {
    path: PathBuf,
}

impl EventSink for BundleEvents {
    fn emit(&self, event: &RunEvent) {
        if let Err(e) = garrison_files::append_line(&self.path, event) {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot write a run event to the bundle");
        }
    }
}

/// `work`, unless `cancel` turns true first (`None` then).
async fn unless_cancelled<F: Future>(
    cancel: &mut watch::Receiver<bool>,
    work: F,
) -> Option<F::Output> {
    if *cancel.borrow() {
        return None;
    }
    let cancelled = async {
        if cancel.wait_for(|c| *c).await.is_err() {
            // A dropped sender never cancels.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        out = work => Some(out),
        () = cancelled => None,
    }
}

/// What a run did, before it is stored.
struct Outcome {
    status: V1RunStatus,
    result: Option<AgentRunResult>,
    error: Option<String>,
    provider: Option<String>,
    redactor: Redactor,
}

/// The task behind [`Openclawssy::start_run`]. Always ends with a stored
/// record, whatever happens to the run.
pub(super) async fn execute(
    svc: Openclawssy,
    run_id: String,
    req: StartRun,
    mut cancel: watch::Receiver<bool>,
) {
    let inner = &svc.inner;
    // The session's turn first, so runs waiting behind another run of their
    // session hold no slot that runs of other sessions could use.
    let turn = match &req.session_id {
        Some(sid) => match inner.sessions.turn(sid) {
            Ok(lock) => unless_cancelled(&mut cancel, lock.lock_owned())
                .await
                .map(Some),
            Err(e) => {
                store(&svc, &run_id, &req, failed(e.to_string())).await;
                return;
            }
        },
        None => Some(None),
    };
    let permit = match &turn {
        Some(_) => unless_cancelled(&mut cancel, inner.slots.clone().acquire_owned())
            .await
            .and_then(Result::ok),
        None => None,
    };
    let (Some(_turn), Some(_permit)) = (turn, permit) else {
        store(
            &svc,
            &run_id,
            &req,
            Outcome {
                status: V1RunStatus::Cancelled,
                error: Some("cancelled before it started: the server is shutting down".into()),
                ..failed(String::new())
            },
        )
        .await;
        return;
    };
    inner.runs.set_running(&run_id);
    tracing::info!(run = %run_id, agent = %req.agent_id, "run started");
    // A panic inside the agent loop must still end in a stored record.
    let attempt = tokio::spawn(attempt(svc.clone(), run_id.clone(), req.clone(), cancel));
    let outcome = match attempt.await {
        Ok(o) => o,
        Err(e) => failed(format!(
            "internal error: the run task ended abnormally: {e}"
        )),
    };
    store(&svc, &run_id, &req, outcome).await;
}

fn failed(error: String) -> Outcome {
    Outcome {
        status: V1RunStatus::Failed,
        result: None,
        error: Some(error),
        provider: None,
        redactor: Redactor::default(),
    }
}

/// Sets up and runs the agent loop.
async fn attempt(
    svc: Openclawssy,
    run_id: String,
    req: StartRun,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let inner = &svc.inner;
    let config = inner.config.get();
    let selected = provider::select(&config, inner.env_provider.as_ref(), &inner.secrets);
    let client = selected
        .as_ref()
        .ok_or_else(|| {
            "no model provider configured: set GARRISON_LLM_BASE_URL and GARRISON_LLM_MODEL, \
             or POST a provider to /api/admin/config"
                .to_string()
        })
        .and_then(|s| s.client());
    let mut secrets = inner.secrets.values();
    if let Ok((_, Some(key))) = &client {
        secrets.push(key.clone());
    }
    let redactor = Redactor::new(secrets.clone());
    let fail = |error: String| Outcome {
        redactor: redactor.clone(),
        ..failed(error)
    };
    let paths = match agent_paths(&inner.data_dir, &req.agent_id) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let audit = match AuditLog::for_agent(&inner.data_dir, &req.agent_id) {
        Ok(a) => a.with_secrets(secrets.clone()),
        Err(e) => return fail(e.to_string()),
    };
    let sink = BundleEvents {
        path: inner.runs.bundle(&req.agent_id, &run_id).join(EVENTS_FILE),
    };

    let mut history = Vec::new();
    if let Some(sid) = &req.session_id {
        match inner.sessions.messages(sid) {
            Ok(msgs) => history = msgs.into_iter().map(|m| m.message).collect(),
            Err(e) => return fail(e.to_string()),
        }
        let user = SessionMessage {
            role: SessionRole::User,
            content: redactor.text(&req.message),
            run_id: Some(run_id.clone()),
            ..SessionMessage::default()
        };
        if let Err(e) = inner.sessions.append(sid, vec![user]) {
            return fail(e.to_string());
        }
    }

    let (mut model, _) = match client {
        Ok(c) => c,
        Err(reason) => {
            // The run was accepted, so its audit trail says why it ended.
            let mut life = Lifecycle::new(&run_id, &req.agent_id, &sink, Some(&audit));
            let mut created = Map::new();
            created.insert("source".into(), json!(req.source));
            created.insert("message".into(), json!(req.message));
            let _ = life.created(created);
            let _ = life.emit(RunEventType::RunStarted, Map::new());
            let mut payload = Map::new();
            payload.insert("reason".into(), json!(reason));
            let _ = life.emit(RunEventType::RunFailed, payload);
            return fail(reason);
        }
    };

    let mut run = AgentRun::new(
        run_id.clone(),
        req.agent_id.clone(),
        req.message.clone(),
        paths.workspace,
        Vec::new(),
    );
    run.source = req.source.clone();
    run.history = history;
    run.limits = RunLimits {
        max_turns: config.max_turns,
        tools: ToolLimits {
            max_timeout_ms: config.tool_timeout_ms,
            ..ToolLimits::default()
        },
        ..RunLimits::default()
    };
    run.audit = Some(audit);
    run.secrets = secrets;
    run.cancel = Some(cancel);
    let mut sandbox = inner.sandbox.clone();
    sandbox.mode = if config.sandbox {
        SandboxMode::Enforce
    } else {
        SandboxMode::Off
    };
    sandbox.allow_network = config.network;
    // Secrets, the token, the ledger and other agents' workspaces.
    sandbox.hidden.push(inner.data_dir.clone());
    run.sandbox = sandbox;
    run.deny = config.deny.clone();

    let provider = selected.map(|s| s.name);
    match run_agent_with(&mut model, &run, &sink).await {
        Ok(result) => Outcome {
            status: result.record.status,
            error: result.record.error.clone(),
            result: Some(result),
            provider,
            redactor,
        },
        Err(e) => Outcome {
            provider,
            ..fail(e.to_string())
        },
    }
}

/// Appends the run's messages to its session, then stores its final record.
async fn store(svc: &Openclawssy, run_id: &str, req: &StartRun, outcome: Outcome) {
    let inner = &svc.inner;
    let Some(mut stored): Option<StoredRun> = inner.runs.live(run_id) else {
        tracing::error!(run = %run_id, "a finished run is not live; its record is kept as it was");
        return;
    };
    let redactor = &outcome.redactor;
    if let Some(result) = &outcome.result {
        let artifact_path = stored.record.artifact_path.take();
        stored.record = result.record.clone();
        stored.record.artifact_path = artifact_path;
        if let Some(sid) = &req.session_id {
            let messages = result
                .session_messages()
                .into_iter()
                .map(|mut m| {
                    for text in [&mut m.content, &mut m.summary, &mut m.error, &mut m.output] {
                        *text = redactor.text(text);
                    }
                    m
                })
                .collect();
            if let Err(e) = inner.sessions.append(sid, messages) {
                tracing::error!(run = %run_id, session = %sid, error = %e, "cannot append the run's messages to its session");
            }
        }
    }
    stored.record.status = outcome.status;
    stored.record.error = outcome.error;
    if outcome.provider.is_some() {
        stored.record.provider = outcome.provider;
    }
    stored.redact(redactor);
    let status = stored.record.status;
    match inner.runs.finish(stored) {
        Ok(()) => {
            tracing::info!(run = %run_id, agent = %req.agent_id, status = ?status, "run finished")
        }
        Err(e) => tracing::error!(run = %run_id, error = %e, "cannot store the run's final record"),
    }
}
