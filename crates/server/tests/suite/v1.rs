//! The Openclawssy `/v1` and admin surface against a real listener, with a
//! model server speaking the OpenAI chat-completions protocol on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use garrison_contracts::openclawssy::{RunEvent, RunEventType, check_run_events};
use garrison_server::{EnvProvider, MasterKey, OpenclawssySettings};
use garrison_test_support::model::{ModelServer, calls, text};
use serde_json::{Value, json};

use super::common::{self, Resp, Server, request};

/// The provider key the servers under test send; it must never be stored,
/// logged or answered.
const PROVIDER_KEY: &str = "prov-key-Quartz-Velvet-9931";

/// The secret store's key of the servers under test (base64 of 32 bytes).
const MASTER_KEY: &str = "q1mXh9yJm0Zl7b8kV3wPp4dQe2s6tU5rA0cB1nD2fG4=";

/// Every log line of this test binary from the first `start` on: the
/// subscriber is process-wide, so it also holds the lines of the crate's
/// other suites running meanwhile (none of them knows these secrets).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// A server on `dir` whose environment provider is `model` with
/// [`PROVIDER_KEY`].
async fn start(dir: &Path, model: &ModelServer, model_name: &str) -> Server {
    capture_logs();
    let mut config = common::config(dir);
    config.openclawssy = Some(OpenclawssySettings {
        env_provider: Some(EnvProvider {
            base_url: model.base_url.clone(),
            model: model_name.into(),
            api_key: Some(PROVIDER_KEY.into()),
        }),
        master_key: Some(MasterKey::parse(MASTER_KEY).unwrap()),
        ..OpenclawssySettings::default()
    });
    Server::start_with(config).await
}

/// Polls the run until it leaves `queued`/`running` (bounded, so a stuck
/// run fails the test instead of hanging it).
async fn wait_run(server: &Server, id: &str) -> Value {
    for _ in 0..600 {
        let r = server.get(&format!("/v1/runs/{id}")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        if !matches!(v["status"].as_str(), Some("queued" | "running")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} did not finish");
}

/// Asserts the Openclawssy error shape with `code`; returns the message.
fn assert_v1_error(r: &Resp, status: u16, code: &str) -> String {
    let v = r.json();
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "only `error`: {v}");
    let msg = v["error"]["message"].as_str().unwrap().to_string();
    assert!(!msg.is_empty(), "{v}");
    msg
}

fn agent_dir(data: &Path) -> PathBuf {
    data.join("agents/agent_default")
}

/// Every audit line of `run_id`, in file order.
fn audit_events(data: &Path, run_id: &str) -> Vec<RunEvent> {
    let dir = agent_dir(data).join("audit");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<RunEvent>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|e| e.run_id == run_id)
        .collect()
}

/// The 200 bodies of `paths`.
async fn snapshot(server: &Server, paths: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for p in paths {
        let r = server.get(p).await;
        assert_eq!(r.status, 200, "{p}");
        out.push(r.json());
    }
    out
}

/// Every regular file under `dir`.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn run_writes_in_its_workspace_refuses_an_escape_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let model = ModelServer::start(vec![
        calls(&[
            (
                "call_w",
                "fs_write",
                json!({"path": "notes/hello.txt", "content": "hello from the agent\n"}),
            ),
            (
                "call_x",
                "fs_write",
                json!({"path": "../x", "content": "escape"}),
            ),
        ]),
        text("Wrote notes/hello.txt; ../x was refused."),
    ]);
    let server = start(dir.path(), &model, "test-model").await;

    let r = server
        .post(
            "/v1/runs",
            &json!({"agent_id": "agent_default", "message": "write a note"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    assert_eq!(created["status"], "queued");
    assert_eq!(created.as_object().unwrap().len(), 2, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let run = wait_run(&server, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], "Wrote notes/hello.txt; ../x was refused.");
    assert_eq!(run["source"], "http");
    assert_eq!(run["agent_id"], "agent_default");
    assert_eq!(run["tool_calls"], 2);
    assert_eq!(run["model"], "test-model");
    assert_eq!(run["provider"], "127.0.0.1");
    let results = run["trace"]["tool_execution_results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{run}");
    assert_eq!(results[0]["tool"], "fs.write");
    assert_eq!(results[0]["tool_call_id"], "call_w");
    assert_eq!(results[0]["error"], "");
    assert!(!results[0]["summary"].as_str().unwrap().is_empty(), "{run}");
    assert_eq!(results[1]["tool_call_id"], "call_x");
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("policy.denied"),
        "{run}"
    );
    assert!(!results[1]["summary"].as_str().unwrap().is_empty(), "{run}");

    // The write landed in the agent's workspace; the escape wrote nothing.
    let workspace = agent_dir(dir.path()).join("workspace");
    assert_eq!(
        std::fs::read_to_string(workspace.join("notes/hello.txt")).unwrap(),
        "hello from the agent\n"
    );
    assert!(!agent_dir(dir.path()).join("x").exists());
    assert!(
        all_files(dir.path())
            .iter()
            .all(|f| f.file_name().unwrap() != "x")
    );

    // The model got the refusal back as a tool result, and the key.
    let seen = model.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    assert_eq!(seen[0].body["model"], "test-model");
    let refusal = seen[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == "call_x")
        .expect("the refusal is fed back");
    assert!(
        refusal["content"]
            .as_str()
            .unwrap()
            .contains("policy.denied"),
        "{refusal}"
    );

    // The audit trail, in contract order with strictly increasing seq.
    let events = audit_events(dir.path(), &id);
    check_run_events(&events, true).unwrap();
    let kinds: Vec<RunEventType> = events.iter().map(|e| e.event_type).collect();
    let mut at = 0;
    for want in [
        RunEventType::RunCreated,
        RunEventType::RunStarted,
        RunEventType::ModelRequested,
        RunEventType::ToolCall,
        RunEventType::ToolResult,
        RunEventType::RunCompleted,
    ] {
        at += kinds[at..]
            .iter()
            .position(|k| *k == want)
            .unwrap_or_else(|| panic!("{want} missing or out of order in {kinds:?}"));
    }
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == RunEventType::ToolResult)
            .count(),
        2
    );

    // The record in the run bundle is what GET answers; the bundle has the events too.
    let bundle = PathBuf::from(run["artifact_path"].as_str().unwrap());
    assert_eq!(bundle, agent_dir(dir.path()).join("runs").join(&id));
    let stored: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("record.json")).unwrap()).unwrap();
    assert_eq!(stored, run);
    let bundle_events = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    assert_eq!(bundle_events.lines().count(), events.len());

    // Errors come in the Openclawssy shape.
    assert_v1_error(&server.get("/v1/runs/run_nope").await, 404, "not.found");
    let msg = assert_v1_error(
        &server.post("/v1/runs", &json!({"message": "m"})).await,
        400,
        "invalid.request",
    );
    assert_eq!(msg, "agent_id is required");
    assert_v1_error(
        &server
            .post(
                "/v1/runs",
                &json!({"agent_id": "agent_default", "message": " "}),
            )
            .await,
        400,
        "invalid.request",
    );
    assert_v1_error(
        &server
            .post("/v1/runs", &json!({"agent_id": "../evil", "message": "m"}))
            .await,
        400,
        "invalid.request",
    );
    assert_v1_error(
        &server
            .post_raw("/v1/runs", Some("application/json"), b"{nope")
            .await,
        400,
        "invalid.request",
    );
    assert_v1_error(&server.get("/v1/nowhere").await, 404, "not.found");
    assert_v1_error(
        &server.call("DELETE", "/v1/runs", None).await,
        405,
        "invalid.request",
    );
    let anonymous = request(server.addr, "GET", &format!("/v1/runs/{id}"), &[], None)
        .await
        .unwrap();
    assert_v1_error(&anonymous, 401, "unauthorized");
    let wrong = request(
        server.addr,
        "GET",
        "/api/admin/status",
        &[("Authorization", "Bearer wrong")],
        None,
    )
    .await
    .unwrap();
    assert_v1_error(&wrong, 401, "unauthorized");
    // /healthz stays public.
    let health = request(server.addr, "GET", "/healthz", &[], None)
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"ok": true}));
    server.stop().await;
}

#[tokio::test]
async fn no_secret_value_reaches_a_file_a_response_or_a_log() {
    const INGESTED: &str = "deploy-Lantern-Orchid-5512";
    let dir = tempfile::tempdir().unwrap();
    let model = ModelServer::start(vec![
        calls(&[(
            "call_r",
            "fs_read",
            json!({"path": format!("{INGESTED}.txt")}),
        )]),
        text(&format!(
            "The token is {INGESTED} and the key is {PROVIDER_KEY}."
        )),
        text(&format!("In chat: {INGESTED}")),
    ]);
    let server = start(dir.path(), &model, "test-model").await;
    let mut bodies: Vec<String> = Vec::new();
    let mut keep = |r: &Resp| bodies.push(String::from_utf8_lossy(&r.body).into_owned());

    let r = server
        .post(
            "/api/admin/secrets",
            &json!({"name": "DEPLOY_TOKEN", "value": INGESTED}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"name": "DEPLOY_TOKEN", "stored": true}));
    keep(&r);

    let r = server
        .post(
            "/v1/runs",
            &json!({"agent_id": "agent_default", "message": format!("Read the file named after {INGESTED}")}),
        )
        .await;
    assert_eq!(r.status, 202);
    keep(&r);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let run = wait_run(&server, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    // Redacted, not dropped.
    assert_eq!(
        run["output"],
        "The token is [REDACTED] and the key is [REDACTED]."
    );

    let r = server
        .post(
            "/v1/chat/messages",
            &json!({"user_id": "u1", "room_id": "r1", "agent_id": "agent_default",
                "message": format!("remember {INGESTED}")}),
        )
        .await;
    assert_eq!(r.status, 202);
    keep(&r);
    let chat = r.json();
    let chat_run = wait_run(&server, chat["id"].as_str().unwrap()).await;
    assert_eq!(chat_run["status"], "completed", "{chat_run}");

    // The values really went through the system: the model saw them.
    let seen = model.requests();
    assert!(seen[0].body.to_string().contains(INGESTED));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );

    for path in [
        format!("/v1/runs/{id}"),
        format!("/v1/runs/{}", chat["id"].as_str().unwrap()),
        "/api/admin/status".to_string(),
        "/api/admin/config".to_string(),
        "/api/admin/secrets".to_string(),
        "/api/admin/chat/sessions".to_string(),
        format!(
            "/api/admin/chat/sessions/{}/messages",
            chat["session_id"].as_str().unwrap()
        ),
    ] {
        let r = server.get(&path).await;
        assert_eq!(r.status, 200, "{path}");
        keep(&r);
    }
    // A rejected secret body does not quote its value either.
    let r = server
        .post(
            "/api/admin/secrets",
            &json!({"name": "N", "value": 4417, "x": INGESTED}),
        )
        .await;
    assert_eq!(r.status, 400);
    keep(&r);
    let r = server
        .post("/api/admin/secrets", &json!({"name": "N", "value": 4417}))
        .await;
    assert_eq!(r.status, 400);
    assert!(!String::from_utf8_lossy(&r.body).contains("4417"));
    server.stop().await;

    for body in &bodies {
        for secret in [INGESTED, PROVIDER_KEY] {
            assert!(!body.contains(secret), "{secret} in a response: {body}");
        }
    }
    assert!(bodies.iter().any(|b| b.contains("DEPLOY_TOKEN")));

    let store = dir.path().join("secrets.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Encrypted at rest: not even the store holds the value in the clear.
    let stored = std::fs::read_to_string(&store).unwrap();
    assert!(stored.contains("AES-256-GCM"), "{stored}");
    let files = all_files(dir.path());
    assert!(files.iter().any(|f| f.ends_with("record.json")));
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "jsonl"))
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        for secret in [INGESTED, PROVIDER_KEY] {
            assert!(!content.contains(secret), "{secret} in {}", file.display());
        }
    }

    let logs = logs();
    assert!(logs.contains(&id), "the logs were captured");
    for secret in [INGESTED, PROVIDER_KEY] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

/// A stored secret that a tool reads from a file as is, in base64 and in
/// hex reaches neither the model nor anything Garrison writes: every
/// request the model server received, the run record, the bundle's events,
/// the audit log, the session, and the answers of the API.
#[tokio::test]
async fn a_stored_secret_in_any_encoding_never_reaches_the_model_or_a_file() {
    use garrison_agent::encoding::{BASE64_STD, base64_encode, hex_encode};
    const SECRET: &str = "vault-Cobalt-Meadow-7734";
    let b64 = base64_encode(SECRET.as_bytes(), BASE64_STD, true);
    let hex = hex_encode(SECRET.as_bytes(), false);
    let forms = [SECRET.to_string(), b64.clone(), hex.clone()];
    let dir = tempfile::tempdir().unwrap();
    let model = ModelServer::start(vec![
        calls(&[("call_leak", "fs_read", json!({"path": "leak.txt"}))]),
        text("I read the file."),
    ]);
    let server = start(dir.path(), &model, "test-model").await;
    let r = server
        .post(
            "/api/admin/secrets",
            &json!({"name": "VAULT_TOKEN", "value": SECRET}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // What an agent could find in its workspace: the value, as it is and encoded.
    let workspace = agent_dir(dir.path()).join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    let leak = workspace.join("leak.txt");
    std::fs::write(
        &leak,
        format!("plain: {SECRET}\nbase64: {b64}\nhex: {hex}\nend of file\n"),
    )
    .unwrap();

    let r = server
        .post(
            "/v1/chat/messages",
            &json!({"user_id": "u7", "room_id": "r7", "agent_id": "agent_default",
                "message": "Show me what leak.txt says"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let chat = r.json();
    let id = chat["id"].as_str().unwrap().to_string();
    let session = chat["session_id"].as_str().unwrap().to_string();
    let run = wait_run(&server, &id).await;
    assert_eq!(run["status"], "completed", "{run}");

    // The model got the tool's result, scrubbed: the rest of the file is there.
    let seen = model.requests();
    assert_eq!(seen.len(), 2);
    let tool_message = seen[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    let shown = tool_message["content"].as_str().unwrap();
    assert!(shown.contains("end of file"), "{shown}");
    assert!(shown.contains("[REDACTED]"), "{shown}");
    for request in &seen {
        let body = request.body.to_string();
        for form in &forms {
            assert!(
                !body.contains(form.as_str()),
                "{form} sent to the model: {body}"
            );
        }
    }

    let mut bodies = Vec::new();
    for path in [
        format!("/v1/runs/{id}"),
        format!("/api/admin/chat/sessions/{session}/messages"),
        "/api/admin/status".to_string(),
    ] {
        let r = server.get(&path).await;
        assert_eq!(r.status, 200, "{path}");
        bodies.push(String::from_utf8_lossy(&r.body).into_owned());
    }
    server.stop().await;
    for body in &bodies {
        for form in &forms {
            assert!(
                !body.contains(form.as_str()),
                "{form} in a response: {body}"
            );
        }
    }

    let files = all_files(dir.path());
    for kind in ["record.json", "events.jsonl"] {
        assert!(files.iter().any(|f| f.ends_with(kind)), "no {kind}");
    }
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(agent_dir(dir.path()).join("audit")))
    );
    assert!(!audit_events(dir.path(), &id).is_empty());
    let sessions: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("session"))
        .collect();
    assert!(!sessions.is_empty(), "no session file in {files:?}");
    // Every file but the one the test wrote, the secret store included.
    for file in files.iter().filter(|f| **f != leak) {
        let content = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        for form in &forms {
            assert!(
                !content.contains(form.as_str()),
                "{form} in {}",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn chat_sessions_keep_history_in_order_and_switch_on_commands() {
    let dir = tempfile::tempdir().unwrap();
    let model = ModelServer::start(vec![
        calls(&[(
            "call_a",
            "fs_write",
            json!({"path": "a.txt", "content": "A"}),
        )]),
        text("first answer"),
        text("second answer"),
        text("third answer"),
        text("other room answer"),
    ]);
    let server = start(dir.path(), &model, "test-model").await;
    let chat = |message: &str| {
        json!({"user_id": "u1", "room_id": "dev-room", "channel": "web",
            "agent_id": "agent_default", "message": message})
    };

    let r = server
        .post("/v1/chat/messages", &chat("first question"))
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let first = r.json();
    assert_eq!(first["status"], "queued");
    let session = first["session_id"].as_str().unwrap().to_string();
    let run1 = first["id"].as_str().unwrap().to_string();
    assert_eq!(wait_run(&server, &run1).await["status"], "completed");

    let r = server
        .post("/v1/chat/messages", &chat("second question"))
        .await;
    assert_eq!(r.status, 202);
    let second = r.json();
    assert_eq!(second["session_id"], session.as_str());
    let run2 = second["id"].as_str().unwrap().to_string();
    let record2 = wait_run(&server, &run2).await;
    assert_eq!(record2["output"], "second answer");
    assert_eq!(record2["source"], "chat");
    assert_eq!(record2["session_id"], session.as_str());

    // The second run sent the first exchange as history, in order.
    let seen = model.requests();
    assert_eq!(seen.len(), 3);
    let msgs = seen[2].body["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "user"],
        "{msgs:?}"
    );
    assert_eq!(msgs[1]["content"], "first question");
    assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_a");
    assert_eq!(msgs[3]["tool_call_id"], "call_a");
    assert!(
        msgs[3]["content"]
            .as_str()
            .unwrap()
            .starts_with("tool fs.write result (call_a)"),
        "{}",
        msgs[3]
    );
    assert_eq!(msgs[4]["content"], "first answer");
    assert_eq!(msgs[5]["content"], "second question");
    // The first run had no history.
    let first_roles: Vec<&str> = seen[0].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(first_roles, ["system", "user"]);

    // The session lists its messages in order, with tool metadata.
    let r = server
        .get(&format!("/api/admin/chat/sessions/{session}/messages"))
        .await;
    assert_eq!(r.status, 200);
    let listed = r.json();
    assert_eq!(listed["session_id"], session.as_str());
    let messages = listed["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "tool", "assistant", "user", "assistant"]);
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(messages[0]["content"], "first question");
    assert_eq!(messages[1]["tool_name"], "fs.write");
    assert_eq!(messages[1]["tool_call_id"], "call_a");
    assert_eq!(messages[1]["run_id"], run1.as_str());
    assert!(!messages[1]["summary"].as_str().unwrap().is_empty());
    assert_eq!(messages[2]["content"], "first answer");
    assert_eq!(messages[2]["run_id"], run1.as_str());
    assert_eq!(messages[4]["run_id"], run2.as_str());

    let list = |query: &'static str| {
        let server = &server;
        async move {
            let r = server
                .get(&format!("/api/admin/chat/sessions{query}"))
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            r.json()["sessions"].as_array().unwrap().clone()
        }
    };
    let sessions = list("?agent_id=agent_default&user_id=u1&room_id=dev-room&channel=web").await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session_id"], session.as_str());
    assert_eq!(sessions[0]["message_count"], 5);
    assert_eq!(sessions[0]["current"], true);
    assert!(list("?channel=slack").await.is_empty());

    // /new starts another session at once; /resume goes back.
    let r = server.post("/v1/chat/messages", &chat("/new")).await;
    assert_eq!(r.status, 200);
    let new = r.json();
    assert!(new.get("id").is_none(), "{new}");
    assert!(!new["response"].as_str().unwrap().is_empty());
    let fresh = new["session_id"].as_str().unwrap().to_string();
    assert_ne!(fresh, session);
    let sessions = list("?user_id=u1").await;
    assert_eq!(sessions.len(), 2);
    let current: Vec<&str> = sessions
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(current, [fresh.as_str()]);

    let r = server
        .post("/v1/chat/messages", &chat(&format!("/resume {session}")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["session_id"], session.as_str());
    let r = server
        .post("/v1/chat/messages", &chat("third question"))
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["session_id"], session.as_str());
    wait_run(&server, r.json()["id"].as_str().unwrap()).await;
    let last = model.requests().last().unwrap().body.to_string();
    assert!(last.contains("second answer") && last.contains("third question"));

    // Without an id, /resume returns to the other session of this place.
    let r = server.post("/v1/chat/messages", &chat("/resume")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["session_id"], fresh.as_str());

    // Another room is another session.
    let mut elsewhere = chat("hello");
    elsewhere["room_id"] = json!("other-room");
    let r = server.post("/v1/chat/messages", &elsewhere).await;
    assert_eq!(r.status, 202);
    let other = r.json()["session_id"].as_str().unwrap().to_string();
    assert!(other != session && other != fresh);
    wait_run(&server, r.json()["id"].as_str().unwrap()).await;

    assert_v1_error(
        &server
            .post("/v1/chat/messages", &chat("/resume session_unknown"))
            .await,
        404,
        "not.found",
    );
    assert_v1_error(
        &server
            .post("/v1/chat/messages", &chat(&format!("/resume {other}")))
            .await,
        404,
        "not.found",
    );
    assert_v1_error(
        &server
            .get("/api/admin/chat/sessions/session_nope/messages")
            .await,
        404,
        "not.found",
    );
    let msg = assert_v1_error(
        &server
            .post(
                "/v1/chat/messages",
                &json!({"agent_id": "agent_default", "message": "hi"}),
            )
            .await,
        400,
        "invalid.request",
    );
    assert_eq!(msg, "user_id is required");
    assert_v1_error(
        &server.get("/api/admin/chat/sessions?colour=blue").await,
        400,
        "invalid.request",
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_config_and_secrets_persist_and_survive_a_restart() {
    const CONFIG_KEY: &str = "cfg-key-Marble-Heron-2207";
    let dir = tempfile::tempdir().unwrap();
    let model = ModelServer::start(vec![
        calls(&[("call_p", "fs_read", json!({"path": "private/notes.txt"}))]),
        text("could not read it"),
        text("hello there"),
    ]);
    let server = start(dir.path(), &model, "env-model").await;

    let r = server.get("/api/admin/secrets").await;
    assert_eq!(r.json(), json!({"names": []}));
    let r = server
        .post(
            "/api/admin/secrets",
            &json!({"name": "MODEL_KEY", "value": CONFIG_KEY}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = server.get("/api/admin/secrets").await;
    assert_eq!(r.json(), json!({"names": ["MODEL_KEY"]}));
    for bad in [
        json!({"name": "bad name", "value": "x"}),
        json!({"name": "A"}),
        json!({"value": "x"}),
        json!({"name": "A", "value": ""}),
        json!(["A", "x"]),
    ] {
        assert_v1_error(
            &server.post("/api/admin/secrets", &bad).await,
            400,
            "invalid.request",
        );
    }

    let r = server.get("/api/admin/config").await;
    assert_eq!(r.status, 200);
    let defaults = r.json();
    assert_eq!(defaults["provider"], Value::Null);
    assert_eq!(defaults["sandbox"], true);

    let config = |max_turns: u32| {
        json!({
            "provider": {"name": "local-test", "base_url": model.base_url, "model": "cfg-model",
                "api_key_secret": "MODEL_KEY"},
            "tool_timeout_ms": 20000, "deny": ["private"], "max_turns": max_turns, "sandbox": true
        })
    };
    let r = server.post("/api/admin/config", &config(8)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = server.post("/api/admin/config", &config(9)).await;
    assert_eq!(r.status, 200);
    let shown = server.get("/api/admin/config").await;
    let view = shown.json();
    assert_eq!(view["provider"]["api_key"], "", "sensitive field blanked");
    assert_eq!(view["provider"]["api_key_secret"], "MODEL_KEY");
    assert_eq!(view["max_turns"], 9);
    assert!(!String::from_utf8_lossy(&shown.body).contains(CONFIG_KEY));

    // Invalid documents are refused and leave the file as it was.
    let file = dir.path().join("agents/config.json");
    let before = std::fs::read(&file).unwrap();
    let with = |path: &[&str], value: Value| {
        let mut doc = config(9);
        let mut at = &mut doc;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        doc
    };
    for bad in [
        with(&["bogus"], json!(1)),
        with(&["provider", "extra"], json!("x")),
        with(&["provider", "base_url"], json!("ftp://example.com/v1")),
        with(&["provider", "base_url"], json!("not a url")),
        with(&["provider", "api_key"], json!(CONFIG_KEY)),
        with(&["max_turns"], json!(0)),
        with(&["max_turns"], json!(-3)),
        with(&["max_turns"], json!(2.5)),
        with(&["tool_timeout_ms"], json!("fast")),
        with(&["deny"], json!(["../outside"])),
        json!("config"),
    ] {
        let r = server.post("/api/admin/config", &bad).await;
        let msg = assert_v1_error(&r, 400, "invalid.request");
        assert!(!msg.contains(CONFIG_KEY), "{msg}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{bad}");
    }
    assert_v1_error(
        &server
            .post_raw("/api/admin/config", None, b"{not json")
            .await,
        400,
        "invalid.request",
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // The status shows the config's provider (it wins over the environment), no key.
    let r = server.get("/api/admin/status").await;
    let status = r.json();
    assert_eq!(
        status["provider"],
        json!({"source": "config", "name": "local-test", "model": "cfg-model",
            "base_url_host": "127.0.0.1", "api_key_from": "secret MODEL_KEY", "api_key_present": true})
    );
    assert!(!String::from_utf8_lossy(&r.body).contains(CONFIG_KEY));

    // A run uses that provider, its stored key, and the config's deny list.
    let r = server
        .post(
            "/v1/runs",
            &json!({"agent_id": "agent_default", "message": "read my notes"}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let run = wait_run(&server, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["provider"], "local-test");
    assert_eq!(run["model"], "cfg-model");
    let denied = &run["trace"]["tool_execution_results"][0];
    assert!(
        denied["error"]
            .as_str()
            .unwrap()
            .starts_with("policy.denied"),
        "{run}"
    );
    let seen = model.requests();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {CONFIG_KEY}").as_str())
    );
    assert_eq!(seen[0].body["model"], "cfg-model");
    let r = server
        .post(
            "/v1/chat/messages",
            &json!({"user_id": "u9", "agent_id": "agent_default", "message": "hi"}),
        )
        .await;
    let chat = r.json();
    let session = chat["session_id"].as_str().unwrap().to_string();
    wait_run(&server, chat["id"].as_str().unwrap()).await;
    let status = server.get("/api/admin/status").await.json();
    let listed = status["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let mine = listed.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(mine["status"], "completed");
    assert_eq!(mine["source"], "http");
    assert_eq!(mine["agent_id"], "agent_default");
    assert!(mine["created_at"].is_string() && mine["finished_at"].is_string());

    let paths = [
        format!("/v1/runs/{id}"),
        "/api/admin/config".to_string(),
        "/api/admin/secrets".to_string(),
        format!("/api/admin/chat/sessions/{session}/messages"),
        "/api/admin/chat/sessions?user_id=u9".to_string(),
    ];
    let before_restart = snapshot(&server, &paths).await;
    let runs_before = server.get("/api/admin/status").await.json()["runs"].clone();
    server.stop().await;

    // Same data dir, new server: everything is still there.
    let server = start(dir.path(), &model, "env-model").await;
    assert_eq!(snapshot(&server, &paths).await, before_restart);
    assert_eq!(
        server.get("/api/admin/status").await.json()["runs"],
        runs_before
    );
    server.stop().await;

    // A config file broken by hand falls back to the last-known-good copy.
    std::fs::write(&file, b"{\"max_turns\": ").unwrap();
    let server = start(dir.path(), &model, "env-model").await;
    let view = server.get("/api/admin/config").await.json();
    assert_eq!(view["max_turns"], 8, "{view}");
    assert_eq!(
        server.get("/api/admin/status").await.json()["config_source"],
        "last_known_good"
    );
    server.stop().await;
    assert!(logs().contains("last-known-good"));
}

/// A scheduler job fires `/v1` runs of its agent on this node: each fire's
/// run is `source: scheduler`, the job shows its outcome, and a `main_like`
/// job's second fire sees the first exchange as history.
#[tokio::test]
async fn scheduler_jobs_start_v1_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = ModelServer::start(vec![text("report one"), text("report two")]);
    let s = start(dir.path(), &model, "sched-model").await;
    let job = json!({
        "job_id": "daily_report", "agent_id": "agent_default", "schedule": "@every 1s",
        "message": "Generate status report", "mode": "main_like", "enabled": true,
    });
    let r = s.post("/api/admin/jobs", &job).await;
    assert_eq!(r.status, 201, "{}", r.json());

    // Bounded wait for two fires whose runs both completed.
    let mut view = Value::Null;
    for _ in 0..600 {
        view = s.get("/api/admin/jobs/daily_report").await.json();
        if view["fires"].as_u64().unwrap_or(0) >= 2 && view["last_outcome"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(view["fires"].as_u64().unwrap_or(0) >= 2, "{view}");
    assert_eq!(view["last_outcome"], "completed", "{view}");
    // Stop further fires before reading what the model saw.
    let r = s
        .call(
            "PATCH",
            "/api/admin/jobs/daily_report",
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json());

    let run_id = view["last_run_id"].as_str().unwrap().to_string();
    let run = wait_run(&s, &run_id).await;
    assert_eq!(run["source"], "scheduler", "{run}");
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], "report two", "{run}");

    let seen = model.requests();
    assert!(seen.len() >= 2, "{seen:?}");
    let second = seen[1].body["messages"].to_string();
    assert!(second.contains("report one"), "history missing: {second}");
    s.stop().await;
}
