//! The escape corpus: what a hostile tool call or agent CLI tries in order to
//! reach past its run, through `shell.exec` and through a `command` unit.
//!
//! Each case is a shell script run in the workspace of a layout that mimics a
//! data dir (secrets, API token, ledger, another agent's workspace, another
//! order's worktree, a unix socket). A script prints `RAN` just before its
//! attempt (so a case cannot pass by failing to start) and `ESCAPED` when the
//! attempt worked. Where the attempt is harmless outside, the same script is
//! also run unconfined as a control and must print `ESCAPED` there: the case
//! would catch a protection that is turned off.

use std::collections::BTreeMap;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use garrison_agent::sandbox::{ChildLimits, SandboxPolicy, support};
use garrison_agent::tools::envelope::new_request;
use garrison_agent::{
    CommandSandbox, PromptMode, ToolRuntime, UnitHooks, UnitJob, UnitProfile, run_unit_with,
};
use serde_json::json;

struct Case {
    name: &'static str,
    script: &'static str,
    /// Safe to run unconfined as a control.
    control: bool,
    /// Uses the deny list (`shell.exec` only: command units have none).
    deny: bool,
}

const fn case(name: &'static str, script: &'static str, control: bool) -> Case {
    Case {
        name,
        script,
        control,
        deny: false,
    }
}

const CORPUS: &[Case] = &[
    // Device nodes.
    case(
        "mknod a character device",
        "echo RAN; mknod devz c 1 3 && echo ESCAPED",
        true,
    ),
    case(
        "mknod a block device",
        "echo RAN; mknod blk b 7 0 && echo ESCAPED",
        true,
    ),
    case(
        "read a device node made outside",
        "echo RAN; head -c 4 {DEVICE} >/dev/null && echo ESCAPED",
        true,
    ),
    // Signals and tracing.
    case(
        "signal 0 to the server",
        "echo RAN; kill -0 {SERVER_PID} && echo ESCAPED",
        true,
    ),
    case(
        "signal 0 to an unrelated process",
        "echo RAN; kill -0 {OTHER_PID} && echo ESCAPED",
        true,
    ),
    case(
        "SIGTERM to an unrelated process",
        "echo RAN; kill -TERM {OTHER_PID} && echo ESCAPED",
        false,
    ),
    case(
        "SIGKILL to the server",
        "echo RAN; kill -KILL {SERVER_PID} && echo ESCAPED",
        false,
    ),
    case(
        "ptrace attach to an unrelated process",
        "python3 -c \"import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); print('RAN'); r=l.ptrace(16,{OTHER_PID},0,0); print('ESCAPED' if r==0 else 'refused'); r==0 and l.ptrace(17,{OTHER_PID},0,0)\"",
        true,
    ),
    case(
        "ptrace of itself",
        "python3 -c \"import ctypes; l=ctypes.CDLL(None,use_errno=True); print('RAN'); print('ESCAPED' if l.ptrace(0,0,0,0)==0 else 'refused')\"",
        true,
    ),
    case(
        "server environment via /proc",
        "echo RAN; tr '\\0' '\\n' < /proc/{SERVER_PID}/environ | grep -q . && echo ESCAPED",
        true,
    ),
    case(
        "server cwd via /proc",
        "echo RAN; ls /proc/{SERVER_PID}/cwd/ >/dev/null && echo ESCAPED",
        true,
    ),
    case(
        "server root via /proc",
        "echo RAN; cat /proc/{SERVER_PID}/root{DATA}/secrets.json && echo ESCAPED",
        true,
    ),
    // The data dir by every path form.
    case(
        "secrets by relative path",
        "echo RAN; cat ../../secrets.json && echo ESCAPED",
        true,
    ),
    case(
        "secrets by absolute path",
        "echo RAN; cat {DATA}/secrets.json && echo ESCAPED",
        true,
    ),
    case(
        "secrets in base64",
        "echo RAN; base64 {DATA}/secrets.json && echo ESCAPED",
        true,
    ),
    case(
        "the API token",
        "echo RAN; cat {DATA}/api-token && echo ESCAPED",
        true,
    ),
    case(
        "the ledger",
        "echo RAN; cat {DATA}/ledger.db >/dev/null && echo ESCAPED",
        true,
    ),
    case(
        "list the data dir",
        "echo RAN; ls {DATA} | grep -q secrets && echo ESCAPED",
        true,
    ),
    case(
        "another agent's workspace",
        "echo RAN; cat ../other/notes.txt && echo ESCAPED",
        true,
    ),
    case(
        "another order's worktree",
        "echo RAN; cat {DATA}/worktrees/o2/file && echo ESCAPED",
        true,
    ),
    case(
        "/proc/self/cwd/..",
        "echo RAN; cat /proc/self/cwd/../../secrets.json && echo ESCAPED",
        true,
    ),
    case(
        "/proc/self/root",
        "echo RAN; cat /proc/self/root{DATA}/api-token && echo ESCAPED",
        true,
    ),
    case(
        "a relative symlink",
        "echo RAN; ln -s ../../secrets.json s && cat s && echo ESCAPED",
        true,
    ),
    case(
        "an absolute symlink",
        "echo RAN; ln -s {DATA}/api-token t && cat t && echo ESCAPED",
        true,
    ),
    case(
        "a hardlink",
        "echo RAN; ln {DATA}/secrets.json h && echo ESCAPED",
        true,
    ),
    case(
        "/etc/shadow",
        "echo RAN; cat /etc/shadow >/dev/null && echo ESCAPED",
        true,
    ),
    // Writes outside.
    case(
        "write a file outside",
        "echo RAN; echo x > {OUTSIDE}/escaped && echo ESCAPED",
        true,
    ),
    case(
        "append to the ledger",
        "echo RAN; echo x >> {DATA}/ledger.db && echo ESCAPED",
        false,
    ),
    case(
        "make a directory outside",
        "echo RAN; mkdir {OUTSIDE}/d && echo ESCAPED",
        true,
    ),
    case(
        "move a file out",
        "echo RAN; touch a && mv a {OUTSIDE}/moved && echo ESCAPED",
        true,
    ),
    case(
        "a FIFO outside",
        "echo RAN; mkfifo {OUTSIDE}/p && echo ESCAPED",
        true,
    ),
    case(
        "write under /etc",
        "echo RAN; touch /etc/garrison-escape-test && echo ESCAPED",
        false,
    ),
    case(
        "write a kernel setting",
        "echo RAN; echo 1 > /proc/sys/vm/drop_caches && echo ESCAPED",
        true,
    ),
    // Privileges.
    case(
        "capabilities left",
        "echo RAN; grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status || echo ESCAPED; grep -q '^CapBnd:[[:space:]]*0*$' /proc/self/status || echo ESCAPED",
        true,
    ),
    case(
        "setuid binaries gain nothing",
        "echo RAN; grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status || echo ESCAPED",
        true,
    ),
    case(
        "chown needs a capability",
        "echo RAN; touch f && chown 1 f && echo ESCAPED",
        true,
    ),
    case(
        "mount a filesystem",
        "echo RAN; mkdir m && mount -t tmpfs none m && echo ESCAPED",
        false,
    ),
    case(
        "a new user namespace",
        "echo RAN; unshare -U true && echo ESCAPED",
        true,
    ),
    case("chroot", "echo RAN; chroot / true && echo ESCAPED", true),
    // Sockets.
    case(
        "a TCP connection to the server",
        "python3 -c \"import socket; print('RAN'); socket.create_connection(('127.0.0.1',{PORT}),timeout=2); print('ESCAPED')\"",
        true,
    ),
    case(
        "bash /dev/tcp to the server",
        "echo RAN; bash -c 'exec 3<>/dev/tcp/127.0.0.1/{PORT}' && echo ESCAPED",
        true,
    ),
    case(
        "the server's unix socket",
        "python3 -c \"import socket; print('RAN'); s=socket.socket(socket.AF_UNIX); s.connect('{DATA}/server.sock'); print('ESCAPED')\"",
        true,
    ),
    case(
        "an abstract unix socket outside",
        "python3 -c \"import socket; print('RAN'); s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.sendto(b'x','\\0{ABSTRACT}'); print('ESCAPED')\"",
        true,
    ),
    // Resources.
    case(
        "a fork bomb",
        "python3 -c \"import os,time\nprint('RAN',flush=True)\nn=0\ntry:\n    for i in range(2000):\n        if os.fork()==0:\n            time.sleep(30); os._exit(0)\n        n+=1\n    print('ESCAPED')\nexcept OSError as e:\n    print('limited after',n,e)\n\"",
        false,
    ),
    case(
        "a file past the size limit",
        "echo RAN; head -c 20000000 /dev/zero > big; [ $(stat -c %s big) -gt 10485760 ] && echo ESCAPED",
        true,
    ),
    // The deny list through the shell.
    Case {
        name: "read a denied file",
        script: "echo RAN; cat private/x && echo ESCAPED",
        control: true,
        deny: true,
    },
    Case {
        name: "overwrite a denied file",
        script: "echo RAN; echo y > private/x && echo ESCAPED",
        control: false,
        deny: true,
    },
    Case {
        name: "list a denied directory",
        script: "echo RAN; ls private | grep -q x && echo ESCAPED",
        control: true,
        deny: true,
    },
    Case {
        name: "a denied file through a symlink",
        script: "echo RAN; ln -s private pv && cat pv/x && echo ESCAPED",
        control: true,
        deny: true,
    },
];

/// A data dir with the things a sandboxed program must not reach.
struct Layout {
    _root: tempfile::TempDir,
    data: PathBuf,
    outside: tempfile::TempDir,
    workspace: PathBuf,
    port: u16,
    /// A `/dev/zero` twin outside `/dev` (made when running as root).
    device: PathBuf,
    abstract_name: String,
    other: std::process::Child,
    _listener: std::net::TcpListener,
    _unix: UnixListener,
    _abstract: UnixDatagram,
}

impl Layout {
    fn new() -> Layout {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().canonicalize().unwrap().join("data");
        let workspace = data.join("workspaces/agent");
        for d in [
            "workspaces/agent/private",
            "workspaces/other",
            "worktrees/o2",
        ] {
            std::fs::create_dir_all(data.join(d)).unwrap();
        }
        std::fs::write(
            data.join("secrets.json"),
            r#"{"secrets":{"k":"sk-secret-value"}}"#,
        )
        .unwrap();
        std::fs::write(data.join("api-token"), "token-value").unwrap();
        std::fs::write(data.join("ledger.db"), "ledger").unwrap();
        std::fs::write(data.join("workspaces/other/notes.txt"), "theirs").unwrap();
        std::fs::write(data.join("worktrees/o2/file"), "other order").unwrap();
        std::fs::write(workspace.join("private/x"), "DENIED-CONTENT").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let unix = UnixListener::bind(data.join("server.sock")).unwrap();
        let abstract_name = format!("garrison-escape-{}", ulid::Ulid::new());
        let addr = <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(abstract_name.as_bytes()).unwrap();
        let abstract_socket = UnixDatagram::bind_addr(&addr).unwrap();
        let device = root.path().join("zero");
        let _ = std::process::Command::new("mknod")
            .args([device.to_str().unwrap(), "c", "1", "5"])
            .status();
        let other = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        Layout {
            _root: root,
            data,
            outside: tempfile::tempdir().unwrap(),
            workspace,
            port,
            device,
            abstract_name,
            other,
            _listener: listener,
            _unix: unix,
            _abstract: abstract_socket,
        }
    }

    fn script(&self, case: &Case) -> String {
        case.script
            .replace("{SERVER_PID}", &std::process::id().to_string())
            .replace("{OTHER_PID}", &self.other.id().to_string())
            .replace("{DATA}", self.data.to_str().unwrap())
            .replace("{OUTSIDE}", self.outside.path().to_str().unwrap())
            .replace("{PORT}", &self.port.to_string())
            .replace("{ABSTRACT}", &self.abstract_name)
            .replace("{DEVICE}", self.device.to_str().unwrap())
    }

    fn policy(&self) -> SandboxPolicy {
        SandboxPolicy {
            hidden: vec![self.data.clone()],
            limits: ChildLimits {
                file_size_bytes: Some(10 << 20),
                ..ChildLimits::DEFAULT
            },
            ..SandboxPolicy::DEFAULT
        }
    }

    /// A fresh workspace for each case (the layout's files stay).
    fn reset_workspace(&self) {
        for entry in std::fs::read_dir(&self.workspace).unwrap().flatten() {
            if entry.file_name() != "private" {
                let p = entry.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
        }
        std::fs::write(self.workspace.join("private/x"), "DENIED-CONTENT").unwrap();
    }

    /// What must hold after every case, whatever it printed.
    fn assert_host_intact(&self, name: &str) {
        assert!(
            std::fs::read_dir(self.outside.path())
                .unwrap()
                .next()
                .is_none(),
            "{name}: something was written outside"
        );
        assert_eq!(
            std::fs::read_to_string(self.data.join("ledger.db")).unwrap(),
            "ledger",
            "{name}"
        );
        assert_eq!(
            std::fs::read_to_string(self.workspace.join("private/x")).unwrap(),
            "DENIED-CONTENT",
            "{name}"
        );
        assert!(!Path::new("/etc/garrison-escape-test").exists(), "{name}");
        let alive = std::process::Command::new("kill")
            .args(["-0", &self.other.id().to_string()])
            .status()
            .unwrap();
        assert!(alive.success(), "{name}: the unrelated process was killed");
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = self.other.kill();
        let _ = self.other.wait();
    }
}

fn kernel_can_sandbox() -> bool {
    let s = support();
    println!("sandbox support on this host: {s:?}");
    if s.landlock_abi.is_none() || !s.seccomp_filter || s.namespaces.is_none() {
        println!("SKIPPED: this host lacks Landlock, seccomp filters or namespaces");
        return false;
    }
    true
}

fn judge(case: &Case, output: &str) {
    println!("--- {}\n{output}", case.name);
    assert!(
        output.contains("RAN"),
        "{}: the attempt never ran:\n{output}",
        case.name
    );
    assert!(
        !output.contains("ESCAPED"),
        "{}: ESCAPED:\n{output}",
        case.name
    );
    assert!(
        !output.contains("DENIED-CONTENT"),
        "{}: read denied content:\n{output}",
        case.name
    );
    assert!(
        !output.contains("sk-secret-value"),
        "{}: read a secret:\n{output}",
        case.name
    );
    assert!(
        !output.contains("token-value"),
        "{}: read the token:\n{output}",
        case.name
    );
}

fn control(layout: &Layout, case: &Case) {
    if !case.control || (case.script.contains("{DEVICE}") && !layout.device.exists()) {
        return;
    }
    layout.reset_workspace();
    let out = std::process::Command::new("sh")
        .args(["-c", &layout.script(case)])
        .current_dir(&layout.workspace)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ESCAPED")
            || text.contains("DENIED-CONTENT")
            || text.contains("sk-secret")
            || text.contains("token-value"),
        "control for {}: the attempt does not work even unconfined, so the case proves nothing:\n{text}\n{}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    // Undo what the control did outside.
    for entry in std::fs::read_dir(layout.outside.path()).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

#[test]
fn the_corpus_has_forty_cases() {
    assert!(CORPUS.len() >= 40, "{}", CORPUS.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_exec_contains_every_case() {
    if !kernel_can_sandbox() {
        return;
    }
    let layout = Layout::new();
    let mut rt = ToolRuntime::new(&layout.workspace);
    rt.deny = vec!["private".into()];
    rt.sandbox = layout.policy();
    rt.limits.max_timeout_ms = 60_000;
    for case in CORPUS {
        control(&layout, case);
        layout.reset_workspace();
        let resp = rt
            .call(&new_request(
                "run_1",
                "agent",
                "shell.exec",
                json!({"command": "sh", "args": ["-c", layout.script(case)], "timeout_ms": 30_000}),
            ))
            .await;
        let output = resp
            .output
            .as_ref()
            .unwrap_or_else(|| panic!("{}: {resp:?}", case.name));
        let text = format!(
            "{}\n{}",
            output["stdout"].as_str().unwrap_or(""),
            output["stderr"].as_str().unwrap_or("")
        );
        judge(case, &text);
        layout.assert_host_intact(case.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_units_contain_every_case() {
    if !kernel_can_sandbox() {
        return;
    }
    let layout = Layout::new();
    let policy = layout.policy();
    let hooks = UnitHooks {
        sandbox: &policy,
        ..UnitHooks::default()
    };
    for case in CORPUS.iter().filter(|c| !c.deny) {
        layout.reset_workspace();
        let profile = UnitProfile::Command {
            program: "sh".into(),
            args: vec!["-c".into(), layout.script(case)],
            prompt: PromptMode::Stdin,
            env: BTreeMap::new(),
            sandbox: CommandSandbox {
                network: false,
                ..CommandSandbox::default()
            },
        };
        let job = UnitJob {
            workspace: layout.workspace.clone(),
            prompt: String::new(),
            budget: Duration::from_secs(30),
            env: Vec::new(),
            run_id: "run_1".into(),
            agent_id: "unit".into(),
        };
        run_unit_with(&profile, &job, hooks)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let read = |f: &str| std::fs::read_to_string(layout.workspace.join(f)).unwrap_or_default();
        let text = format!(
            "{}\n{}",
            read("outputs/stdout.txt"),
            read("outputs/stderr.txt")
        );
        judge(case, &text);
        layout.assert_host_intact(case.name);
    }
}

#[tokio::test]
async fn command_units_have_the_network_by_default() {
    if !kernel_can_sandbox() {
        return;
    }
    let layout = Layout::new();
    let policy = layout.policy();
    let hooks = UnitHooks {
        sandbox: &policy,
        ..UnitHooks::default()
    };
    let script = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1',{}),timeout=2); print('CONNECTED')\"",
        layout.port
    );
    let profile = UnitProfile::Command {
        program: "sh".into(),
        args: vec!["-c".into(), script],
        prompt: PromptMode::Stdin,
        env: BTreeMap::new(),
        sandbox: CommandSandbox::default(),
    };
    let job = UnitJob {
        workspace: layout.workspace.clone(),
        prompt: String::new(),
        budget: Duration::from_secs(30),
        env: Vec::new(),
        run_id: "run_1".into(),
        agent_id: "unit".into(),
    };
    run_unit_with(&profile, &job, hooks).await.unwrap();
    let stdout = std::fs::read_to_string(layout.workspace.join("outputs/stdout.txt")).unwrap();
    assert!(stdout.contains("CONNECTED"), "{stdout}");
}

#[tokio::test]
async fn command_units_can_use_git_in_their_worktree() {
    if !kernel_can_sandbox() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let data = root.path().canonicalize().unwrap().join("data");
    let repo = data.join("theaters/t/repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("tracked.txt"), "x").unwrap();
    git(&repo, &["add", "."]);
    git(
        &repo,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
    let worktree = data.join("theaters/t/worktrees/o1");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            worktree.to_str().unwrap(),
            "-b",
            "o1",
        ],
    );
    let policy = SandboxPolicy {
        hidden: vec![data.clone()],
        ..SandboxPolicy::DEFAULT
    };
    let hooks = UnitHooks {
        sandbox: &policy,
        ..UnitHooks::default()
    };
    let profile = UnitProfile::Command {
        program: "sh".into(),
        args: vec!["-c".into(), "git ls-files; git status --short; echo hi > new.txt && git add new.txt && git status --short".into()],
        prompt: PromptMode::Stdin,
        env: BTreeMap::new(),
        sandbox: CommandSandbox::default(),
    };
    let job = UnitJob {
        workspace: worktree.clone(),
        prompt: String::new(),
        budget: Duration::from_secs(30),
        env: Vec::new(),
        run_id: "run_1".into(),
        agent_id: "unit".into(),
    };
    let report = run_unit_with(&profile, &job, hooks).await.unwrap();
    let read = |f: &str| std::fs::read_to_string(worktree.join(f)).unwrap_or_default();
    let (stdout, stderr) = (read("outputs/stdout.txt"), read("outputs/stderr.txt"));
    assert!(
        stdout.contains("tracked.txt"),
        "{report:?}\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("A  new.txt"),
        "{report:?}\n{stdout}\n{stderr}"
    );
}
