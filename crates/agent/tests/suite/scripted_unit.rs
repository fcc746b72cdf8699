//! Scripted units: recorded turns through the real tool loop and tool runtime.

use std::path::Path;
use std::time::Duration;

use garrison_agent::tool_loop::{LoopSettings, run_tool_loop};
use garrison_agent::{
    ChatMessage, ChatRequest, Model, ModelError, ScriptedModel, ToolRuntime, UnitJob, UnitOutcome,
    UnitProfile, run_unit,
};
use garrison_contracts::ironclaw::artifacts::AarModel;
use serde_json::{Value, json};

fn job(workspace: &Path, budget: Duration) -> UnitJob {
    UnitJob {
        workspace: workspace.to_path_buf(),
        prompt: "Draft the docs".into(),
        budget,
        env: vec![],
        run_id: "run_1".into(),
        agent_id: "agent_default".into(),
    }
}

fn write_script(dir: &Path, turns: Value) -> std::path::PathBuf {
    let path = dir.join("draft.json");
    std::fs::write(
        &path,
        serde_json::to_string(&json!({ "turns": turns })).unwrap(),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn scripted_unit_writes_files_and_finishes() {
    let ws = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let script = write_script(
        scripts.path(),
        json!([
            {"content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {
                    "name": "fs_write", "arguments": "{\"path\":\"docs/a.md\",\"content\":\"hi\"}"}}
            ]},
            {"tool_calls": [
                {"id": "c2", "type": "function", "function": {
                    "name": "fs_write", "arguments": {"path": "outputs/report.md", "content": "# Report\n"}}},
                {"id": "c3", "type": "function", "function": {
                    "name": "fs_read", "arguments": {"path": "docs/a.md"}}}
            ]},
            {"content": "Drafted docs/a.md and the report."}
        ]),
    );
    let profile = UnitProfile::Scripted { script };
    let report = run_unit(&profile, &job(ws.path(), Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded, "{report:?}");
    assert_eq!(report.summary, "Drafted docs/a.md and the report.");
    assert_eq!(report.tool_calls, 3);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(report.model.provider, "scripted");
    assert_eq!(report.model.name, "draft.json");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("docs/a.md")).unwrap(),
        "hi"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("outputs/report.md")).unwrap(),
        "# Report\n"
    );
    let artifacts: Vec<_> = report
        .artifacts
        .iter()
        .map(|a| (a.path.as_str(), a.mime_type.as_str()))
        .collect();
    assert_eq!(
        artifacts,
        [
            ("outputs/model_output.txt", "text/plain"),
            ("outputs/report.md", "text/markdown"),
            ("outputs/transcript.json", "application/json"),
        ]
    );
    // The fs.read result reached the transcript the model would have seen.
    let transcript: Vec<ChatMessage> = serde_json::from_str(
        &std::fs::read_to_string(ws.path().join("outputs/transcript.json")).unwrap(),
    )
    .unwrap();
    let read_result = transcript
        .iter()
        .find(|m| m.tool_call_id.as_deref() == Some("c3"))
        .and_then(|m| m.content.as_deref())
        .unwrap();
    let read_result: Value = serde_json::from_str(read_result).unwrap();
    assert_eq!(read_result["output"]["content"], "hi");
}

#[tokio::test]
async fn exhausted_script_fails_the_unit() {
    let ws = tempfile::tempdir().unwrap();
    let script = write_script(
        ws.path(),
        json!([{"tool_calls": [{"id": "c1", "function": {"name": "fs_list", "arguments": "{}"}}]}]),
    );
    let report = run_unit(
        &UnitProfile::Scripted { script },
        &job(ws.path(), Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let UnitOutcome::Failed { reason } = &report.outcome else {
        panic!("{report:?}");
    };
    assert!(reason.contains("script exhausted"), "{reason}");
    assert!(ws.path().join("outputs/transcript.json").exists());
    assert!(ws.path().join("outputs/model_output.txt").exists());
}

#[tokio::test]
async fn failure_loop_escalation_fails_the_unit() {
    let ws = tempfile::tempdir().unwrap();
    let failing = |i: usize| {
        json!({"tool_calls": [{"id": format!("c{i}"), "type": "function",
            "function": {"name": "fs_read", "arguments": {"path": format!("missing{i}.txt")}}}]})
    };
    // 2 failures arm recovery; in recovery a single success does not clear
    // it, so the third failure there (the sixth call) ends the unit.
    let mut turns: Vec<Value> = (0..4).map(failing).collect();
    turns.push(
        json!({"tool_calls": [{"id": "ok", "function": {"name": "fs_list", "arguments": {}}}]}),
    );
    turns.extend((4..9).map(failing));
    turns.push(json!({"content": "never reached"}));
    let script = write_script(ws.path(), Value::Array(turns));
    let report = run_unit(
        &UnitProfile::Scripted { script },
        &job(ws.path(), Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        UnitOutcome::Failed {
            reason: "tool calls kept failing through error recovery; guidance needed".into()
        }
    );
    assert_eq!(report.tool_calls, 6);
    assert!(report.summary.contains("guidance"), "{}", report.summary);
    assert!(
        report.summary.contains("missing4.txt"),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn max_turns_bounds_the_loop() {
    let ws = tempfile::tempdir().unwrap();
    let turn =
        json!({"tool_calls": [{"id": "c", "function": {"name": "fs_list", "arguments": {}}}]});
    let mut model = ScriptedModel::new(vec![
        serde_json::from_value(turn.clone()).unwrap(),
        serde_json::from_value(turn.clone()).unwrap(),
        serde_json::from_value(turn).unwrap(),
    ]);
    let settings = LoopSettings {
        max_turns: 2,
        temperature: None,
        model: AarModel {
            provider: "scripted".into(),
            name: "inline".into(),
            temperature: None,
        },
    };
    let report = run_tool_loop(
        &mut model,
        &ToolRuntime::new(ws.path()),
        &job(ws.path(), Duration::from_secs(30)),
        &settings,
    )
    .await;
    assert_eq!(
        report.outcome,
        UnitOutcome::Failed {
            reason: "no final answer after 2 model turns".into()
        }
    );
    assert_eq!(report.tool_calls, 2);
}

/// A model that never answers in time.
struct Stalled;

impl Model for Stalled {
    async fn complete(&mut self, _req: &ChatRequest) -> Result<ChatMessage, ModelError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(ChatMessage::assistant("too late"))
    }
}

#[tokio::test]
async fn budget_bounds_the_loop() {
    let ws = tempfile::tempdir().unwrap();
    let settings = LoopSettings {
        max_turns: 3,
        temperature: None,
        model: AarModel {
            provider: "test".into(),
            name: "stalled".into(),
            temperature: None,
        },
    };
    let started = std::time::Instant::now();
    let report = run_tool_loop(
        &mut Stalled,
        &ToolRuntime::new(ws.path()),
        &job(ws.path(), Duration::from_millis(200)),
        &settings,
    )
    .await;
    assert_eq!(report.outcome, UnitOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(ws.path().join("outputs/transcript.json").exists());
}

#[tokio::test]
async fn missing_script_is_a_profile_error() {
    let ws = tempfile::tempdir().unwrap();
    let err = run_unit(
        &UnitProfile::Scripted {
            script: ws.path().join("absent.json"),
        },
        &job(ws.path(), Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "PROFILE_INVALID");
}

#[test]
fn run_unit_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let profile = UnitProfile::Noop;
    let job = job(Path::new("."), Duration::from_secs(1));
    assert_send(&run_unit(&profile, &job));
}
