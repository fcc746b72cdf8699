//! The chat-completions client and the tool loop against a local server
//! speaking the real wire format.

use std::path::Path;
use std::time::Duration;

use garrison_agent::tool_loop::{LoopSettings, run_tool_loop};
use garrison_agent::{OpenAiClient, ToolRuntime, UnitJob, UnitOutcome, UnitProfile, run_unit};
use garrison_contracts::ironclaw::artifacts::AarModel;
use garrison_test_support::model::{ModelServer, Reply};
use serde_json::{Value, json};

/// The server's base URL with a trailing slash, which the client must accept.
fn with_slash(model: &ModelServer) -> String {
    format!("{}/", model.base_url)
}

fn tool_call(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

fn job(workspace: &Path) -> UnitJob {
    UnitJob {
        workspace: workspace.to_path_buf(),
        prompt: "Write a greeting to notes/hello.md".into(),
        budget: Duration::from_secs(30),
        env: vec![],
        run_id: "run_1".into(),
        agent_id: "agent_default".into(),
    }
}

fn settings() -> LoopSettings {
    LoopSettings {
        max_turns: 8,
        temperature: Some(0.0),
        model: AarModel {
            provider: "127.0.0.1".into(),
            name: "test-model".into(),
            temperature: Some(0.0),
        },
    }
}

fn tool_messages(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .cloned()
        .collect()
}

#[tokio::test]
async fn tool_call_round_trip_with_retry() {
    let model = ModelServer::start(vec![
        Reply::status(
            429,
            json!({"error": {"message": "slow down", "type": "rate_limit"}}),
        )
        .header("retry-after", "0"),
        Reply::message(json!({"role": "assistant", "content": null, "tool_calls": [
            tool_call("call_1", "fs_write", r#"{"path":"notes/hello.md","content":"hello\n"}"#)
        ]})),
        Reply::message(json!({"role": "assistant", "content": "Wrote notes/hello.md."})),
    ]);
    let base = with_slash(&model);
    let ws = tempfile::tempdir().unwrap();
    let mut client = OpenAiClient::new(&base, Some("sk-test".into()), "test-model")
        .unwrap()
        .with_backoff_base(Duration::from_millis(1));
    let report = run_tool_loop(
        &mut client,
        &ToolRuntime::new(ws.path()),
        &job(ws.path()),
        &settings(),
    )
    .await;

    assert_eq!(report.outcome, UnitOutcome::Succeeded, "{report:?}");
    assert_eq!(report.summary, "Wrote notes/hello.md.");
    assert_eq!(report.tool_calls, 1);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("notes/hello.md")).unwrap(),
        "hello\n"
    );
    let paths: Vec<_> = report.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        ["outputs/model_output.txt", "outputs/transcript.json"]
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("outputs/model_output.txt")).unwrap(),
        "Wrote notes/hello.md."
    );
    let transcript: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.path().join("outputs/transcript.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(transcript.as_array().unwrap().len(), 5);

    let seen = model.requests();
    assert_eq!(seen.len(), 3, "one 429, retried, then two turns");
    assert_eq!(
        seen[0].body, seen[1].body,
        "the retry resends the same request"
    );
    for request in &seen {
        assert_eq!(request.authorization.as_deref(), Some("Bearer sk-test"));
        let body = &request.body;
        assert_eq!(body["model"], "test-model");
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["temperature"], 0.0);
        let names: Vec<_> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["type"], "function");
                t["function"]["name"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["fs_read", "fs_write", "fs_list", "fs_edit", "shell_exec"]
        );
    }
    let first = &seen[0].body["messages"];
    assert_eq!(first[0]["role"], "system");
    assert_eq!(
        first[1],
        json!({"role": "user", "content": "Write a greeting to notes/hello.md"})
    );

    let last = &seen[2].body;
    let assistant = &last["messages"][2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["tool_calls"][0]["function"]["name"], "fs_write");
    let tools = tool_messages(last);
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["tool_call_id"], "call_1");
    let result: Value = serde_json::from_str(tools[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["tool"], "fs.write");
    assert_eq!(
        result["output"],
        json!({"path": "notes/hello.md", "bytes": 6})
    );
}

#[tokio::test]
async fn denied_and_malformed_calls_go_back_to_the_model() {
    let model = ModelServer::start(vec![
        Reply::message(
            json!({"role": "assistant", "content": "Trying.", "tool_calls": [
                tool_call("c1", "fs_write", r#"{"path":"../escape.txt","content":"x"}"#),
                tool_call("c2", "fs_read", r#"{"path":"/etc/passwd"}"#),
                tool_call("c3", "fs_write", r#"{"path": "a.txt", "content": "#),
                tool_call("c4", "web_fetch", r#"{}"#),
            ]}),
        ),
        Reply::message(json!({"role": "assistant", "content": "I cannot do that."})),
    ]);
    let base = with_slash(&model);
    let parent = tempfile::tempdir().unwrap();
    let ws = parent.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let mut client = OpenAiClient::new(&base, None, "test-model").unwrap();
    let report = run_tool_loop(&mut client, &ToolRuntime::new(&ws), &job(&ws), &settings()).await;

    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    assert_eq!(report.tool_calls, 4);
    assert_eq!(report.notes, ["4 of 4 tool calls failed"]);
    assert!(!parent.path().join("escape.txt").exists());
    let seen = model.requests();
    assert!(seen[0].authorization.is_none(), "no key, no header");
    let tools = tool_messages(&seen[1].body);
    let codes: Vec<_> = tools
        .iter()
        .map(|m| {
            let r: Value = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
            assert_eq!(r["ok"], false);
            (
                m["tool_call_id"].as_str().unwrap().to_string(),
                r["error"]["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("c1".to_string(), json!("policy.denied")),
            ("c2".to_string(), json!("policy.denied")),
            ("c3".to_string(), json!("tool.input_invalid")),
            ("c4".to_string(), json!("tool.not_found")),
        ]
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let model = ModelServer::start(vec![Reply::status(
        400,
        json!({"error": {"message": "model `nope` does not exist"}}),
    )]);
    let base = with_slash(&model);
    let ws = tempfile::tempdir().unwrap();
    let mut client = OpenAiClient::new(&base, Some("k".into()), "nope").unwrap();
    let report = run_tool_loop(
        &mut client,
        &ToolRuntime::new(ws.path()),
        &job(ws.path()),
        &settings(),
    )
    .await;
    let UnitOutcome::Failed { reason } = &report.outcome else {
        panic!("{report:?}");
    };
    assert!(reason.contains("HTTP 400"), "{reason}");
    assert!(reason.contains("does not exist"), "{reason}");
    assert_eq!(model.requests().len(), 1);
    assert!(ws.path().join("outputs/transcript.json").exists());
}

#[tokio::test]
async fn server_errors_are_retried_until_the_limit() {
    let answers: Vec<Reply> = (0..5)
        .map(|_| Reply::status(503, json!({"error": {"message": "overloaded"}})))
        .collect();
    let model = ModelServer::start(answers);
    let base = with_slash(&model);
    let client = OpenAiClient::new(&base, None, "m")
        .unwrap()
        .with_backoff_base(Duration::from_millis(1));
    let err = client
        .chat(&garrison_agent::ChatRequest::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert_eq!(model.requests().len(), 4, "first attempt + 3 retries");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transport_error() {
    // Bind then drop: nothing listens on this port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = OpenAiClient::new(format!("http://127.0.0.1:{port}/v1"), None, "m")
        .unwrap()
        .with_backoff_base(Duration::from_millis(1));
    let err = client
        .chat(&garrison_agent::ChatRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, garrison_agent::ModelError::Transport(_)),
        "{err}"
    );
}

#[tokio::test]
async fn llm_profile_runs_end_to_end() {
    let model = ModelServer::start(vec![Reply::message(
        json!({"role": "assistant", "content": "Nothing to do."}),
    )]);
    let base = with_slash(&model);
    let ws = tempfile::tempdir().unwrap();
    // Any variable the test process is sure to have stands in for a key.
    let key_var = "CARGO_PKG_NAME";
    let key = std::env::var(key_var).unwrap();
    let profile = UnitProfile::Llm {
        base_url: base.clone(),
        model: "test-model".into(),
        api_key_env: Some(key_var.into()),
        temperature: Some(0.3),
        max_turns: 4,
        fallback: None,
    };
    let report = run_unit(&profile, &job(ws.path())).await.unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    assert_eq!(report.summary, "Nothing to do.");
    assert_eq!(
        report.model,
        AarModel {
            provider: "127.0.0.1".into(),
            name: "test-model".into(),
            temperature: Some(0.3)
        }
    );
    {
        let seen = model.requests();
        assert_eq!(seen[0].authorization, Some(format!("Bearer {key}")));
        assert_eq!(seen[0].body["temperature"], 0.3);
    }

    let missing_key = UnitProfile::Llm {
        base_url: base,
        model: "test-model".into(),
        api_key_env: Some("GARRISON_TEST_NO_SUCH_KEY_VAR".into()),
        temperature: None,
        max_turns: 4,
        fallback: None,
    };
    let err = run_unit(&missing_key, &job(ws.path())).await.unwrap_err();
    assert_eq!(err.code(), "MODEL_UNAVAILABLE");
}

#[tokio::test]
async fn complete_text_asks_without_tools() {
    let model = ModelServer::start(vec![Reply::message(
        json!({"role": "assistant", "content": "{\"orders\": []}"}),
    )]);
    let base = with_slash(&model);
    let profile = UnitProfile::Llm {
        base_url: base,
        model: "planner".into(),
        api_key_env: None,
        temperature: None,
        max_turns: 1,
        fallback: None,
    };
    let text = garrison_agent::complete_text(&profile, "plan it", "ship the docs")
        .await
        .unwrap();
    assert_eq!(text, "{\"orders\": []}");
    {
        let seen = model.requests();
        let body = &seen[0].body;
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "plan it"})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "ship the docs"})
        );
    }

    let err = garrison_agent::complete_text(&UnitProfile::Noop, "s", "u")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PROFILE_INVALID");
}

#[tokio::test]
async fn llm_unit_tool_calls_are_audited() {
    let model = ModelServer::start(vec![
        Reply::message(json!({"role": "assistant", "content": null, "tool_calls": [
            tool_call("c1", "fs_write", r#"{"path":"a.txt","content":"token=abc123"}"#),
            tool_call("c2", "fs_read", r#"{"path":"missing.txt"}"#),
        ]})),
        Reply::message(json!({"role": "assistant", "content": "Done."})),
    ]);
    let base = with_slash(&model);
    let ws = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let profile = UnitProfile::Llm {
        base_url: base,
        model: "test-model".into(),
        api_key_env: None,
        temperature: None,
        max_turns: 4,
        fallback: None,
    };
    let audit = garrison_agent::AuditLog::for_agent(data.path(), "unit_7").unwrap();
    let events = garrison_agent::EventLog::new();
    let hooks = garrison_agent::UnitHooks {
        events: &events,
        audit: Some(&audit),
        ..Default::default()
    };
    let mut j = job(ws.path());
    j.agent_id = "unit_7".into();
    let report = garrison_agent::run_unit_with(&profile, &j, hooks)
        .await
        .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    let dir = data.path().join("agents/unit_7/audit");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(!text.contains("abc123"));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), events.events().len());
    let of = |t: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event_type"] == t).collect() };
    let calls = of("tool.call");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["payload"]["tool"], "fs.write");
    assert_eq!(calls[0]["redactions"], json!(["payload.input.content"]));
    let results = of("tool.result");
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["payload"]["ok"], false);
    assert_eq!(results[1]["payload"]["error"]["code"], "tool.input_invalid");
    assert_eq!(of("run.completed").len(), 1);
}
