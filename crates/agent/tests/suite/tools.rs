//! The built-in tools through `ToolRuntime::call`.

use std::time::{Duration, Instant};

use garrison_agent::ToolRuntime;
use garrison_contracts::openclawssy::{ToolErrorCode, ToolRequest, ToolResponse};
use serde_json::{Value, json};

fn request(tool: &str, input: Value) -> ToolRequest {
    ToolRequest {
        request_id: "req_1".into(),
        run_id: "run_1".into(),
        agent_id: "agent_default".into(),
        tool: tool.into(),
        input,
        timeout_ms: 30_000,
        created_at: None,
    }
}

async fn call(rt: &ToolRuntime, tool: &str, input: Value) -> ToolResponse {
    let resp = rt.call(&request(tool, input)).await;
    // Every response honours the envelope contract, success or not.
    resp.validate().unwrap();
    assert_eq!(resp.tool, tool);
    assert!(resp.duration_ms.is_some() && resp.finished_at.is_some());
    resp
}

fn code(resp: &ToolResponse) -> ToolErrorCode {
    resp.error.as_ref().map(|e| e.code).unwrap()
}

#[tokio::test]
async fn write_then_read_round_trip() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let w = call(
        &rt,
        "fs.write",
        json!({"path": "docs/deep/a.md", "content": "héllo\n"}),
    )
    .await;
    assert!(w.ok, "{w:?}");
    assert_eq!(
        w.output,
        Some(json!({"path": "docs/deep/a.md", "bytes": 7}))
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("docs/deep/a.md")).unwrap(),
        "héllo\n"
    );
    let r = call(&rt, "fs.read", json!({"path": "./docs/deep/a.md"})).await;
    assert_eq!(
        r.output,
        Some(json!({"path": "./docs/deep/a.md", "content": "héllo\n", "bytes": 7}))
    );
    let missing = call(&rt, "fs.read", json!({"path": "nope.txt"})).await;
    assert_eq!(code(&missing), ToolErrorCode::ToolInputInvalid);
}

#[tokio::test]
async fn read_is_capped() {
    let ws = tempfile::tempdir().unwrap();
    let mut rt = ToolRuntime::new(ws.path());
    rt.limits.output_cap_bytes = 4;
    std::fs::write(ws.path().join("big.txt"), "abcdefgh").unwrap();
    let r = call(&rt, "fs.read", json!({"path": "big.txt"})).await;
    let out = r.output.unwrap();
    assert_eq!(out["content"], "abcd");
    assert_eq!(out["bytes"], 8);
    assert_eq!(out["truncated"], true);
}

#[tokio::test]
async fn list_shows_kinds_and_hides_git() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    std::fs::create_dir(ws.path().join(".git")).unwrap();
    std::fs::create_dir(ws.path().join("src")).unwrap();
    std::fs::write(ws.path().join("b.txt"), "12345").unwrap();
    std::os::unix::fs::symlink("b.txt", ws.path().join("a-link")).unwrap();
    let l = call(&rt, "fs.list", json!({})).await;
    assert_eq!(
        l.output.unwrap(),
        json!({"path": ".", "entries": [
            {"name": "a-link", "kind": "symlink", "bytes": 0},
            {"name": "b.txt", "kind": "file", "bytes": 5},
            {"name": "src", "kind": "dir", "bytes": 0},
        ]})
    );
    let not_dir = call(&rt, "fs.list", json!({"path": "b.txt"})).await;
    assert_eq!(code(&not_dir), ToolErrorCode::ToolInputInvalid);
}

#[tokio::test]
async fn edit_needs_exactly_one_occurrence() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    std::fs::write(ws.path().join("f.txt"), "one two two\n").unwrap();
    for old in ["three", "two", ""] {
        let e = call(
            &rt,
            "fs.edit",
            json!({"path": "f.txt", "old": old, "new": "x"}),
        )
        .await;
        assert_eq!(code(&e), ToolErrorCode::ToolInputInvalid, "{old:?}");
    }
    let twice = call(
        &rt,
        "fs.edit",
        json!({"path": "f.txt", "old": "two", "new": "x"}),
    )
    .await;
    assert_eq!(twice.error.unwrap().details["occurrences"], 2);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("f.txt")).unwrap(),
        "one two two\n"
    );
    let ok = call(
        &rt,
        "fs.edit",
        json!({"path": "f.txt", "old": "one", "new": "1"}),
    )
    .await;
    assert_eq!(ok.output, Some(json!({"path": "f.txt", "replacements": 1})));
    assert_eq!(
        std::fs::read_to_string(ws.path().join("f.txt")).unwrap(),
        "1 two two\n"
    );
}

#[tokio::test]
async fn bad_requests_get_canonical_codes() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let unknown = call(&rt, "web.fetch", json!({"url": "x"})).await;
    assert_eq!(code(&unknown), ToolErrorCode::ToolNotFound);
    let bad_input = call(&rt, "fs.write", json!({"path": "a.txt"})).await;
    assert_eq!(code(&bad_input), ToolErrorCode::ToolInputInvalid);
    let wrong_type = call(&rt, "fs.read", json!({"path": 3})).await;
    assert_eq!(code(&wrong_type), ToolErrorCode::ToolInputInvalid);
    let not_object = call(&rt, "fs.read", json!(["a"])).await;
    assert_eq!(code(&not_object), ToolErrorCode::InvalidRequest);
    let escape = call(
        &rt,
        "fs.write",
        json!({"path": "../out.txt", "content": "x"}),
    )
    .await;
    assert_eq!(code(&escape), ToolErrorCode::PolicyDenied);
    assert!(!ws.path().parent().unwrap().join("out.txt").exists());
    let git = call(
        &rt,
        "fs.write",
        json!({"path": ".git/hooks/pre-commit", "content": "x"}),
    )
    .await;
    assert_eq!(code(&git), ToolErrorCode::PolicyDenied);
    assert!(!ws.path().join(".git").exists());
}

#[tokio::test]
async fn shell_exec_reports_exit_codes_and_output() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let r = call(
        &rt,
        "shell.exec",
        json!({"command": "sh", "args": ["-c", "echo out; echo err >&2; exit 4"]}),
    )
    .await;
    assert!(r.ok, "a non-zero exit is still a successful call");
    assert_eq!(
        r.output,
        Some(json!({"exit_code": 4, "stdout": "out\n", "stderr": "err\n", "truncated": false}))
    );
    let missing = call(
        &rt,
        "shell.exec",
        json!({"command": "garrison-no-such-program"}),
    )
    .await;
    assert_eq!(code(&missing), ToolErrorCode::ToolInputInvalid);
}

#[tokio::test]
async fn shell_exec_gets_a_minimal_environment() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let r = call(&rt, "shell.exec", json!({"command": "env"})).await;
    let out = r.output.unwrap();
    let mut names: Vec<_> = out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    names.sort();
    assert_eq!(names, ["HOME", "LANG", "PATH", "TMPDIR"]);
    let home = call(&rt, "shell.exec", json!({"command": "pwd"})).await;
    assert_eq!(
        home.output.unwrap()["stdout"],
        format!("{}\n", ws.path().canonicalize().unwrap().display())
    );
}

#[tokio::test]
async fn shell_exec_times_out() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let started = Instant::now();
    let r = call(
        &rt,
        "shell.exec",
        json!({"command": "sh", "args": ["-c", "echo begun; sleep 20"], "timeout_ms": 300}),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = r.error.unwrap();
    assert_eq!(err.code, ToolErrorCode::Timeout);
    assert!(err.retryable);
    assert_eq!(err.details["timeout_ms"], 300);
    assert_eq!(err.details["stdout"], "begun\n");
}

#[test]
fn every_tool_has_an_object_schema() {
    let rt = ToolRuntime::new("/tmp");
    let specs = rt.specs();
    let names: Vec<_> = specs.iter().map(|s| s.name).collect();
    assert_eq!(names, garrison_agent::tools::TOOL_NAMES);
    for s in specs {
        assert_eq!(s.parameters["type"], "object", "{}", s.name);
    }
}

#[test]
fn special_files_are_refused_without_blocking() {
    let ws = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(ws.path().join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let _socket = std::os::unix::net::UnixListener::bind(ws.path().join("sock")).unwrap();
    for (tool, input) in [
        ("fs.read", json!({"path": "pipe"})),
        ("fs.write", json!({"path": "pipe", "content": "x"})),
        ("fs.edit", json!({"path": "pipe", "old": "a", "new": "b"})),
        ("fs.read", json!({"path": "sock"})),
        ("fs.write", json!({"path": "sock", "content": "x"})),
    ] {
        // Nothing writes to the FIFO or reads from it: a blocking open would
        // hang the call for good, so it runs on a thread of its own that the
        // test abandons (rather than waits for) when the bound passes.
        let (tx, rx) = std::sync::mpsc::channel();
        let (dir, shown) = (ws.path().to_path_buf(), format!("{tool} {input}"));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let rt = ToolRuntime::new(&dir);
            let _ = tx.send(runtime.block_on(call(&rt, tool, input)));
        });
        let resp = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{shown} blocked"));
        assert_eq!(
            code(&resp),
            ToolErrorCode::ToolInputInvalid,
            "{shown}: {resp:?}"
        );
        let message = &resp.error.as_ref().unwrap().message;
        assert!(message.contains("not a regular file"), "{message}");
    }
}

#[tokio::test]
async fn overlong_paths_are_invalid_input_and_not_echoed_whole() {
    let ws = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let long_path = "a/".repeat(2500);
    let long_name = format!("{}.txt", "n".repeat(300));
    for (tool, input) in [
        ("fs.read", json!({"path": long_path})),
        ("fs.write", json!({"path": long_name, "content": "x"})),
        ("fs.list", json!({"path": long_path})),
    ] {
        let resp = call(&rt, tool, input).await;
        assert_eq!(
            code(&resp),
            ToolErrorCode::ToolInputInvalid,
            "{tool}: {resp:?}"
        );
        let error = resp.error.unwrap();
        assert!(error.message.chars().count() < 250, "{}", error.message);
        assert!(format!("{:?}", error.details).len() < 600, "{error:?}");
    }
}
