//! `garrison doctor`: which protections the sandbox gets on this host, and
//! a sandboxed program actually started to prove it.

use std::process::ExitCode;

use clap::Args;
use garrison_agent::sandbox::{
    Confinement, NamespaceMode, ProcessLimitMode, Protection, SandboxPolicy, Support, support,
};
use serde_json::json;

#[derive(Debug, Args)]
#[command(after_help = "\
Every program a run starts (`shell.exec`, `command` units) runs in the
sandbox. Landlock and seccomp are required: without them such programs are
refused with `sandbox.unavailable`. Namespaces and the process limit are used
wherever the host offers them; `--require` makes the check fail without them.

Exit status: 0 when the sandbox works here (and has what --require names),
1 otherwise.

Examples:
  garrison doctor
  garrison doctor --json
  garrison doctor --require namespaces --require process-limit")]
pub struct DoctorArgs {
    /// One JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// A protection that must be present
    #[arg(long, value_enum)]
    pub require: Vec<Required>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Required {
    Namespaces,
    ProcessLimit,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let s = support();
    let check = self_test();
    let mut missing: Vec<&str> = Vec::new();
    if !s.has(Protection::Landlock) {
        missing.push("landlock");
    }
    if !s.has(Protection::Seccomp) {
        missing.push("seccomp");
    }
    for r in &args.require {
        let (p, name) = match r {
            Required::Namespaces => (Protection::Namespaces, "namespaces"),
            Required::ProcessLimit => (Protection::ProcessLimit, "process-limit"),
        };
        if !s.has(p) {
            missing.push(name);
        }
    }
    let ok = missing.is_empty() && check.is_ok();
    if args.json {
        println!(
            "{}",
            json!({
                "ok": ok,
                "support": s,
                "scoped_signals": s.scoped_signals(),
                "missing": missing,
                "self_test": check.as_ref().map(|()| "ok").map_err(String::as_str).unwrap_or_else(|e| e),
            })
        );
    } else {
        print_text(&s, &check, &missing);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_text(s: &Support, check: &Result<(), String>, missing: &[&str]) {
    let yes_no = |b: bool| if b { "yes" } else { "NO " };
    println!(
        "sandbox protections on this host (programs start as uid {}):",
        s.uid
    );
    let landlock = match s.landlock_abi {
        Some(abi) if abi >= 6 => {
            format!("ABI {abi}: file and TCP access, signals and abstract sockets scoped")
        }
        Some(abi) if abi >= 4 => {
            format!("ABI {abi}: file and TCP access (signals unscoped before ABI 6)")
        }
        Some(abi) => format!("ABI {abi}: file access (no TCP rules before ABI 4)"),
        None => "absent: programs are refused".into(),
    };
    println!(
        "  landlock       {}  {landlock}",
        yes_no(s.landlock_abi.is_some())
    );
    println!(
        "  seccomp        {}  {}",
        yes_no(s.seccomp_filter),
        if s.seccomp_filter {
            "ptrace, mounts, keyrings, kernel loading, device nodes and new namespaces refused"
        } else {
            "absent: programs are refused"
        }
    );
    let ns = match s.namespaces {
        Some(NamespaceMode::AsRoot) => {
            "mount, PID and IPC (network too without Landlock ABI 6), made as root"
        }
        Some(NamespaceMode::UserNamespace) => {
            "mount, PID and IPC (network too without Landlock ABI 6), through a user namespace"
        }
        None => "absent: programs see host processes, and a deny list cannot bind them (refused)",
    };
    println!("  namespaces     {}  {ns}", yes_no(s.namespaces.is_some()));
    let limit = match s.process_limit {
        Some(ProcessLimitMode::Cgroup) => "a pids cgroup per program",
        Some(ProcessLimitMode::Rlimit) => "RLIMIT_NPROC inside the program's user namespace",
        None => "absent: a fork bomb is bounded only by the timeout",
    };
    println!(
        "  process limit  {}  {limit}",
        yes_no(s.process_limit.is_some())
    );
    match check {
        Ok(()) => println!("self-test: a sandboxed program started and exited 0"),
        Err(e) => println!("self-test: FAILED: {e}"),
    }
    if !missing.is_empty() {
        println!("missing: {}", missing.join(", "));
    }
}

/// Starts `sh -c true` in the default sandbox.
fn self_test() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("garrison-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("no temp dir: {e}"))?;
    let rt = crate::runtime().map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let mut confinement = Confinement::prepare(&SandboxPolicy::DEFAULT, &dir, &[])
            .map_err(|e| format!("{}: {}", e.code.as_str(), e.message))?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "true"]).current_dir(&dir);
        confinement.apply(&mut cmd);
        let status = cmd
            .status()
            .await
            .map_err(|e| format!("cannot start sh: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("sh -c true ended with {status}"))
        }
    });
    let _ = std::fs::remove_dir(&dir);
    result
}
