//! `run_agent` against local servers speaking the chat-completions wire
//! format: the failure loop, parallel tool calls, provider failover,
//! lifecycle events and the audit log.

use std::path::Path;

use garrison_agent::{
    AgentRun, AuditLog, EventLog, LoopOutcome, ProviderProfile, RunLimits, run_agent,
};
use garrison_contracts::openclawssy::{
    AuditRecord, RunEvent, RunEventType, V1RunStatus, check_run_events,
};
use garrison_test_support::model::{ModelServer, Reply, calls, text};
use serde_json::{Value, json};

fn failing(i: usize) -> Reply {
    calls(&[(
        &format!("f{i}"),
        "fs_read",
        json!({"path": format!("missing{i}.txt")}),
    )])
}

fn succeeding(i: usize) -> Reply {
    calls(&[(&format!("s{i}"), "fs_list", json!({}))])
}

fn provider(base: &str, model: &str) -> ProviderProfile {
    ProviderProfile {
        base_url: base.to_string(),
        model: model.to_string(),
        // Any variable the test process is sure to have stands in for a key.
        api_key_env: Some("CARGO_PKG_NAME".into()),
    }
}

fn agent_run(ws: &Path, providers: Vec<ProviderProfile>) -> AgentRun {
    let mut run = AgentRun::new("run_1", "agent_default", "do the work", ws, providers);
    run.limits = RunLimits {
        max_turns: 20,
        ..RunLimits::default()
    };
    run
}

/// Whether the request's last message is the error-recovery note.
fn in_recovery(body: &Value) -> bool {
    let last = body["messages"].as_array().unwrap().last().unwrap();
    last["role"] == "system"
        && last["content"]
            .as_str()
            .unwrap()
            .starts_with("Error-recovery mode")
}

fn kinds(events: &[RunEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

#[tokio::test]
async fn failure_loop_escalates_after_two_then_three_failures() {
    let model = ModelServer::start((0..6).map(failing));
    let ws = tempfile::tempdir().unwrap();
    let events = EventLog::new();
    let run = agent_run(ws.path(), vec![provider(&model.base_url, "m")]);
    let result = run_agent(&run, &events).await.unwrap();

    assert_eq!(result.outcome, LoopOutcome::NeedsGuidance);
    let seen = model.requests();
    assert_eq!(seen.len(), 5, "2 failures, then 3 in recovery");
    let modes: Vec<bool> = seen.iter().map(|r| in_recovery(&r.body)).collect();
    assert_eq!(modes, [false, false, true, true, true]);
    assert_eq!(result.record.status, V1RunStatus::Completed);
    assert_eq!(result.record.tool_calls, 5);
    let output = result.record.output.as_deref().unwrap();
    assert!(output.contains("guidance"), "{output}");
    // Recent attempts with their errors are quoted.
    for i in 0..5 {
        assert!(output.contains(&format!("missing{i}.txt")), "{output}");
    }
    assert!(output.contains("tool.input_invalid"), "{output}");
    let trace = &result.record.trace.as_ref().unwrap().tool_execution_results;
    assert_eq!(trace.len(), 5);
    assert!(
        trace
            .iter()
            .all(|t| t.error.starts_with("tool.input_invalid"))
    );
    assert!(
        trace[0]
            .summary
            .starts_with("fs.read failed: tool.input_invalid")
    );

    let events = events.events();
    check_run_events(&events, true).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event_type, RunEventType::RunCompleted);
    assert_eq!(last.payload["needs_guidance"], true);
    let recovery: Vec<bool> = events
        .iter()
        .filter(|e| e.event_type == RunEventType::ModelRequested)
        .map(|e| e.payload["recovery_mode"].as_bool().unwrap())
        .collect();
    assert_eq!(recovery, [false, false, true, true, true]);
}

#[tokio::test]
async fn recovery_clears_only_after_sustained_success() {
    // F F | S F F F: a single success in recovery does not clear it.
    let mut answers: Vec<Reply> = vec![failing(0), failing(1), succeeding(0)];
    answers.extend((2..6).map(failing));
    let model = ModelServer::start(answers);
    let ws = tempfile::tempdir().unwrap();
    let result = run_agent(
        &agent_run(ws.path(), vec![provider(&model.base_url, "m")]),
        &EventLog::new(),
    )
    .await
    .unwrap();
    assert_eq!(result.outcome, LoopOutcome::NeedsGuidance);
    let modes: Vec<bool> = model
        .requests()
        .iter()
        .map(|r| in_recovery(&r.body))
        .collect();
    assert_eq!(modes, [false, false, true, true, true, true]);

    // F F | S S clears; F F arms again; 3 more end it.
    let mut answers: Vec<Reply> = vec![failing(0), failing(1), succeeding(0), succeeding(1)];
    answers.extend((2..8).map(failing));
    let model = ModelServer::start(answers);
    let result = run_agent(
        &agent_run(ws.path(), vec![provider(&model.base_url, "m")]),
        &EventLog::new(),
    )
    .await
    .unwrap();
    assert_eq!(result.outcome, LoopOutcome::NeedsGuidance);
    let modes: Vec<bool> = model
        .requests()
        .iter()
        .map(|r| in_recovery(&r.body))
        .collect();
    assert_eq!(
        modes,
        [false, false, true, true, false, false, true, true, true]
    );
    assert_eq!(result.record.tool_calls, 9);
}

#[tokio::test]
async fn parallel_calls_run_together_and_answer_in_call_order() {
    // Each of the first two calls waits for the other's file: they can only
    // both succeed when they run at the same time.
    let rendezvous = |mine: &str, theirs: &str| {
        json!({"command": "sh", "args": ["-c", format!(
            "touch {mine}; i=0; while [ ! -e {theirs} ]; do sleep 0.05; i=$((i+1)); \
             [ $i -gt 100 ] && exit 7; done; exit 0")]})
    };
    let model = ModelServer::start(vec![
        calls(&[
            ("c1", "shell_exec", rendezvous("a", "b")),
            ("c2", "shell_exec", rendezvous("b", "a")),
            (
                "c3",
                "fs_write",
                json!({"path": "x.txt", "content": "1\n2\n"}),
            ),
        ]),
        text("All done."),
    ]);
    let ws = tempfile::tempdir().unwrap();
    let events = EventLog::new();
    let result = run_agent(
        &agent_run(ws.path(), vec![provider(&model.base_url, "m")]),
        &events,
    )
    .await
    .unwrap();
    if let Some(e) = result.executions[0].response.error.as_ref()
        && e.code.as_str().starts_with("sandbox.")
    {
        println!("SKIPPED parallel shell calls: {}", e.message);
        return;
    }
    assert_eq!(result.outcome, LoopOutcome::Completed);
    assert_eq!(result.record.output.as_deref(), Some("All done."));
    for e in &result.executions[..2] {
        assert_eq!(
            e.response.output.as_ref().unwrap()["exit_code"],
            0,
            "{:?}",
            e.response
        );
    }
    let trace = &result.record.trace.as_ref().unwrap().tool_execution_results;
    let ids: Vec<_> = trace.iter().map(|t| t.tool_call_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert_eq!(trace[2].summary, "wrote 2 line(s) to x.txt");
    assert_eq!(trace[0].summary, "`sh` exited with code 0");

    let seen = model.requests();
    let tool_msgs: Vec<&Value> = seen[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    let ids: Vec<_> = tool_msgs
        .iter()
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    // Each tool message is the response envelope.
    for m in tool_msgs {
        let env: Value = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
        assert_eq!(env["ok"], true);
        assert_eq!(env["error"], Value::Null);
        assert_eq!(env["run_id"], "run_1");
    }

    let events = events.events();
    check_run_events(&events, true).unwrap();
    assert_eq!(
        kinds(&events),
        [
            "run.created",
            "run.started",
            "model.requested",
            "tool.call",
            "tool.call",
            "tool.call",
            "tool.result",
            "tool.result",
            "tool.result",
            "model.requested",
            "run.completed"
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
    assert!(
        events
            .iter()
            .all(|e| e.run_id == "run_1" && e.agent_id == "agent_default")
    );
}

#[tokio::test]
async fn failover_to_the_second_provider_and_stay_there() {
    let overloaded: Vec<Reply> = (0..8)
        .map(|_| {
            Reply::status(503, json!({"error": {"message": "overloaded"}}))
                .header("retry-after", "0")
        })
        .collect();
    let primary = ModelServer::start(overloaded);
    let backup = ModelServer::start(vec![
        calls(&[("c1", "fs_list", json!({}))]),
        text("Listed."),
    ]);
    let ws = tempfile::tempdir().unwrap();
    let run = agent_run(
        ws.path(),
        vec![
            provider(&primary.base_url, "primary-model"),
            provider(&backup.base_url, "backup-model"),
        ],
    );
    let result = run_agent(&run, &EventLog::new()).await.unwrap();
    assert_eq!(result.outcome, LoopOutcome::Completed);
    assert_eq!(result.record.output.as_deref(), Some("Listed."));
    assert_eq!(result.record.model.as_deref(), Some("backup-model"));
    assert_eq!(result.record.provider.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        primary.requests().len(),
        4,
        "one attempt and three retries, once: the second turn stays on the backup"
    );
    let backup_seen = backup.requests();
    assert_eq!(backup_seen.len(), 2);
    assert_eq!(backup_seen[0].body["model"], "backup-model");
    assert_eq!(result.notes.len(), 1);
    assert!(result.notes[0].contains("HTTP 503"), "{:?}", result.notes);

    // Both failing: the run fails with both errors.
    let a = ModelServer::start([Reply::status(400, json!({"error": {"message": "bad a"}}))]);
    let b = ModelServer::start([Reply::status(400, json!({"error": {"message": "bad b"}}))]);
    let events = EventLog::new();
    let result = run_agent(
        &agent_run(
            ws.path(),
            vec![provider(&a.base_url, "x"), provider(&b.base_url, "y")],
        ),
        &events,
    )
    .await
    .unwrap();
    let LoopOutcome::Failed { reason } = &result.outcome else {
        panic!("{:?}", result.outcome);
    };
    assert!(
        reason.contains("bad a") && reason.contains("bad b"),
        "{reason}"
    );
    assert_eq!(result.record.status, V1RunStatus::Failed);
    let events = events.events();
    check_run_events(&events, true).unwrap();
    assert_eq!(events.last().unwrap().event_type, RunEventType::RunFailed);
}

#[tokio::test]
async fn every_event_is_audited_and_redacted() {
    let key = std::env::var("CARGO_PKG_NAME").unwrap();
    let model = ModelServer::start(vec![
        calls(&[(
            "c1",
            "fs_write",
            json!({"path": "cfg.env", "content": "password=hunter2\nother=configured-secret-value\n"}),
        )]),
        text("Stored."),
    ]);
    let data = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let mut run = agent_run(ws.path(), vec![provider(&model.base_url, "m")]);
    run.message = format!("my key is {key}, keep it safe");
    run.audit = Some(
        AuditLog::for_agent(data.path(), "agent_default")
            .unwrap()
            .with_secrets(["configured-secret-value".to_string()]),
    );
    let events = EventLog::new();
    let result = run_agent(&run, &events).await.unwrap();
    assert_eq!(result.outcome, LoopOutcome::Completed);
    // The file itself holds what the model wrote: only the log is scrubbed.
    assert!(
        std::fs::read_to_string(ws.path().join("cfg.env"))
            .unwrap()
            .contains("hunter2")
    );

    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let file = data
        .path()
        .join(format!("agents/agent_default/audit/{day}.jsonl"));
    let log = std::fs::read_to_string(&file).unwrap();
    for secret in ["hunter2", "configured-secret-value", key.as_str()] {
        assert!(!log.contains(secret), "{secret} leaked into the audit log");
    }
    let records: Vec<AuditRecord> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = events.events();
    assert_eq!(records.len(), events.len());
    for (r, e) in records.iter().zip(&events) {
        assert_eq!(r.event_id, e.event_id);
        assert_eq!(r.seq, e.seq);
        assert_eq!(r.event_type, e.event_type.as_str());
        assert_eq!(r.run_id, "run_1");
        assert_eq!(r.agent_id, "agent_default");
        // Sink events are redacted the same way.
        assert_eq!(
            Value::Object(r.payload.clone()),
            Value::Object(e.payload.clone())
        );
    }
    let created = &records[0];
    assert_eq!(created.event_type, "run.created");
    assert_eq!(created.actor, "system");
    assert_eq!(created.redactions, ["payload.message"]);
    let call = records
        .iter()
        .find(|r| r.event_type == "tool.call")
        .unwrap();
    assert_eq!(call.actor, "agent");
    assert_eq!(call.redactions, ["payload.input.content"]);
    assert_eq!(call.payload["input"]["path"], "cfg.env");
    assert_eq!(call.payload["timeout_ms"], 30_000);
    let result_line = records
        .iter()
        .find(|r| r.event_type == "tool.result")
        .unwrap();
    assert_eq!(result_line.payload["ok"], true);
    assert_eq!(result_line.payload["summary"], "wrote 2 line(s) to cfg.env");

    // A second run appends; the first run's lines stay as they were.
    let model = ModelServer::start(vec![text("Again.")]);
    let mut again = agent_run(ws.path(), vec![provider(&model.base_url, "m")]);
    again.run_id = "run_2".into();
    again.audit = run.audit.clone();
    run_agent(&again, &EventLog::new()).await.unwrap();
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.starts_with(&log));
    assert!(after.lines().count() > records.len());
}

#[tokio::test]
async fn cancelled_and_invalid_runs() {
    let model = ModelServer::start(vec![text("never")]);
    let ws = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(true);
    let mut run = agent_run(ws.path(), vec![provider(&model.base_url, "m")]);
    run.cancel = Some(rx);
    let events = EventLog::new();
    let result = run_agent(&run, &events).await.unwrap();
    drop(tx);
    assert_eq!(result.outcome, LoopOutcome::Cancelled);
    assert_eq!(result.record.status, V1RunStatus::Cancelled);
    let events = events.events();
    check_run_events(&events, true).unwrap();
    assert_eq!(
        events.last().unwrap().event_type,
        RunEventType::RunCancelled
    );

    for bad in [
        AgentRun::new(
            "r",
            "",
            "m",
            ws.path(),
            vec![provider(&model.base_url, "m")],
        ),
        AgentRun::new(
            "r",
            "a/b",
            "m",
            ws.path(),
            vec![provider(&model.base_url, "m")],
        ),
        AgentRun::new(
            "r",
            "a",
            " ",
            ws.path(),
            vec![provider(&model.base_url, "m")],
        ),
        AgentRun::new(
            "r",
            "a",
            "m",
            ws.path().join("absent"),
            vec![provider(&model.base_url, "m")],
        ),
    ] {
        let err = run_agent(&bad, &EventLog::new()).await.unwrap_err();
        assert_eq!(err.code(), "invalid.request", "{err}");
    }
    let err = run_agent(
        &AgentRun::new("r", "a", "m", ws.path(), vec![]),
        &EventLog::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "internal.error");
}

#[tokio::test]
async fn session_history_reaches_the_model_under_the_policy() {
    use garrison_agent::{SessionMessage, SessionRole};
    let model = ModelServer::start(vec![text("Resumed.")]);
    let ws = tempfile::tempdir().unwrap();
    let mut run = agent_run(ws.path(), vec![provider(&model.base_url, "m")]);
    run.history = vec![
        SessionMessage {
            role: SessionRole::User,
            content: "write the dockerfile".into(),
            ..SessionMessage::default()
        },
        SessionMessage {
            role: SessionRole::Assistant,
            content: "Writing it.".into(),
            ..SessionMessage::default()
        },
        SessionMessage {
            role: SessionRole::Tool,
            tool_name: Some("fs.write".into()),
            tool_call_id: Some("tool-json-1".into()),
            summary: "wrote 24 line(s) to Dockerfile".into(),
            output: "x".repeat(5000),
            ..SessionMessage::default()
        },
    ];
    let result = run_agent(&run, &EventLog::new()).await.unwrap();
    assert_eq!(result.outcome, LoopOutcome::Completed);
    let seen = model.requests();
    let msgs = seen[0].body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 5);
    assert_eq!(msgs[2]["tool_calls"][0]["id"], "tool-json-1");
    assert_eq!(msgs[3]["role"], "tool");
    let content = msgs[3]["content"].as_str().unwrap();
    assert!(content.starts_with(
        "tool fs.write result (tool-json-1)\nsummary: wrote 24 line(s) to Dockerfile\noutput: "
    ));
    assert!(content.chars().count() <= 1400);
    assert_eq!(msgs[4], json!({"role": "user", "content": "do the work"}));
    let persisted = result.session_messages();
    assert_eq!(persisted.len(), 1);
    assert_eq!(persisted[0].content, "Resumed.");
}
