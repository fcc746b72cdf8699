//! `shell.exec` inside the sandbox: writes outside the workspace and network
//! sockets are refused; on a kernel without Landlock or seccomp the tool
//! refuses to run (these tests then print SKIPPED for what they cannot show).

use std::path::Path;

use garrison_agent::ToolRuntime;
use garrison_agent::sandbox::{SandboxMode, SandboxPolicy, support};
use garrison_agent::tools::envelope::new_request;
use garrison_contracts::openclawssy::{ToolErrorCode, ToolResponse};
use serde_json::{Value, json};

/// The harness's name for [`sandbox_child_connect`] in this test binary.
const CHILD_TEST: &str = garrison_test_support::test_name!(sandbox_child_connect);

/// The test that a sandboxed run of this test binary executes: it tries a
/// TCP connection to the address in `./addr.txt` (its working directory is
/// the workspace) and records what happened in `./socket-result.txt`.
/// Run directly (no `addr.txt`), it does nothing.
#[test]
#[ignore = "run by network_sockets_are_refused inside the sandbox"]
fn sandbox_child_connect() {
    let Ok(addr) = std::fs::read_to_string("addr.txt") else {
        return;
    };
    let result = match std::net::TcpStream::connect(addr.trim()) {
        Ok(_) => "connected".to_string(),
        Err(e) => format!("refused: {e}"),
    };
    std::fs::write("socket-result.txt", result).unwrap();
}

fn kernel_can_sandbox() -> bool {
    let s = support();
    println!("sandbox support on this kernel: {s:?}");
    if s.landlock_abi.is_none() || !s.seccomp_filter {
        println!("SKIPPED: this kernel lacks Landlock or seccomp filters");
        return false;
    }
    true
}

async fn exec(rt: &ToolRuntime, input: Value) -> ToolResponse {
    let resp = rt
        .call(&new_request("run_1", "agent_default", "shell.exec", input))
        .await;
    resp.validate().unwrap();
    resp
}

fn out(resp: &ToolResponse) -> &Value {
    resp.output.as_ref().unwrap_or_else(|| panic!("{resp:?}"))
}

#[tokio::test]
async fn writes_outside_the_workspace_are_refused() {
    if !kernel_can_sandbox() {
        let ws = tempfile::tempdir().unwrap();
        let r = exec(&ToolRuntime::new(ws.path()), json!({"command": "true"})).await;
        assert_eq!(r.error.unwrap().code, ToolErrorCode::SandboxUnavailable);
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let rt = ToolRuntime::new(ws.path());
    let target = outside.path().join("escaped.txt");
    let write = |path: &Path| json!({"command": "sh", "args": ["-c", "echo x > \"$1\"", "sh", path.to_str().unwrap()]});

    let r = exec(&rt, write(&target)).await;
    assert_ne!(out(&r)["exit_code"], 0, "{r:?}");
    assert!(
        out(&r)["stderr"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{r:?}"
    );
    assert!(!target.exists());
    let r = exec(
        &rt,
        json!({"command": "mkdir", "args": [outside.path().join("d").to_str().unwrap()]}),
    )
    .await;
    assert_ne!(out(&r)["exit_code"], 0);
    assert!(!outside.path().join("d").exists());

    // Inside the workspace writing works, reading system files works, reading
    // elsewhere does not; /dev/null works.
    let r = exec(&rt, write(&ws.path().join("inside.txt"))).await;
    assert_eq!(out(&r)["exit_code"], 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("inside.txt")).unwrap(),
        "x\n"
    );
    std::fs::write(outside.path().join("readable.txt"), "hello").unwrap();
    let r = exec(
        &rt,
        json!({"command": "cat", "args": [outside.path().join("readable.txt").to_str().unwrap()]}),
    )
    .await;
    assert_ne!(out(&r)["exit_code"], 0, "{r:?}");
    assert_eq!(out(&r)["stdout"], "");
    let r = exec(&rt, json!({"command": "cat", "args": ["/etc/passwd"]})).await;
    assert!(
        out(&r)["stdout"].as_str().unwrap().contains("root:"),
        "{r:?}"
    );
    let r = exec(
        &rt,
        json!({"command": "sh", "args": ["-c", "echo x > /dev/null"]}),
    )
    .await;
    assert_eq!(out(&r)["exit_code"], 0, "{r:?}");
}

#[tokio::test]
async fn network_sockets_are_refused() {
    if !kernel_can_sandbox() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let me = std::env::current_exe().unwrap();
    let child = |rt: &ToolRuntime| {
        std::fs::write(rt.workspace.join("addr.txt"), &addr).unwrap();
        json!({"command": me.to_str().unwrap(),
            "args": ["--exact", CHILD_TEST, "--ignored", "--test-threads=1"]})
    };
    let read_result = |ws: &Path| std::fs::read_to_string(ws.join("socket-result.txt")).unwrap();

    // Control: the same child outside the sandbox does connect.
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join("addr.txt"), &addr).unwrap();
    let status = std::process::Command::new(&me)
        .args(["--exact", CHILD_TEST, "--ignored", "--test-threads=1"])
        .current_dir(plain.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert_eq!(read_result(plain.path()), "connected");

    let ws = tempfile::tempdir().unwrap();
    let mut rt = ToolRuntime::new(ws.path());
    // The test binary lives outside the system paths.
    let bin_dir = me.parent().unwrap().to_path_buf();
    rt.sandbox.read.push(bin_dir.clone());
    let r = exec(&rt, child(&rt)).await;
    assert_eq!(out(&r)["exit_code"], 0, "{r:?}");
    let result = read_result(ws.path());
    assert!(result.starts_with("refused:"), "{result}");
    assert!(result.contains("ermission denied"), "{result}");

    // Allowing the network lifts only the socket filter.
    let allowed = tempfile::tempdir().unwrap();
    let mut rt = ToolRuntime::new(allowed.path());
    rt.sandbox.read.push(bin_dir);
    rt.sandbox.allow_network = true;
    let r = exec(&rt, child(&rt)).await;
    assert_eq!(out(&r)["exit_code"], 0, "{r:?}");
    assert_eq!(read_result(allowed.path()), "connected");
}

#[tokio::test]
async fn no_sandbox_means_no_shell() {
    let ws = tempfile::tempdir().unwrap();
    let mut rt = ToolRuntime::new(ws.path());
    rt.sandbox = SandboxPolicy {
        mode: SandboxMode::Off,
        ..SandboxPolicy::DEFAULT
    };
    let r = exec(&rt, json!({"command": "sh", "args": ["-c", "touch ran"]})).await;
    let err = r.error.unwrap();
    assert_eq!(err.code, ToolErrorCode::SandboxRequired);
    assert!(!ws.path().join("ran").exists());
    // The other tools need no sandbox.
    let w = rt
        .call(&new_request(
            "run_1",
            "agent_default",
            "fs.write",
            json!({"path": "a.txt", "content": "x"}),
        ))
        .await;
    assert!(w.ok, "{w:?}");
}
