//! `garrison-bench tools`: an `fs.read` round trip through the tool runtime
//! (request validation, workspace path policy, envelope, output caps) and the
//! audit log (redaction, one locked append per record: `tool.call` and
//! `tool.result`), beside a baseline that reads the same file and appends the
//! same two lines to a plain file with none of that.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Args;
use garrison_agent::{AuditLog, ToolRuntime};
use garrison_contracts::openclawssy::{AuditRecord, ToolRequest};
use serde_json::{Map, Value, json};

use crate::stats::{percentile_ms, round3};

#[derive(Args)]
pub struct ToolsArgs {
    /// Calls per side
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Size of the file read, in bytes
    #[arg(long, default_value_t = 4096)]
    file_bytes: usize,
    /// `shell.exec` of `true` in the sandbox instead, beside the same program
    /// spawned unconfined (with --calls 500 unless given)
    #[arg(long)]
    shell: bool,
}

pub async fn run(args: ToolsArgs) -> anyhow::Result<()> {
    if args.shell {
        return run_shell(args).await;
    }
    let dir = tempfile::tempdir()?;
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(workspace.join("src"))?;
    let content = "x".repeat(args.file_bytes);
    std::fs::write(workspace.join("src/notes.txt"), &content)?;

    let runtime = ToolRuntime::new(&workspace);
    let audit = AuditLog::at(dir.path().join("audit"));
    eprintln!(
        "tools: {} fs.read calls through policy and audit",
        args.calls
    );
    let (tools_secs, mut tools_lat) = measure(args.calls, |i| {
        let runtime = &runtime;
        let audit = &audit;
        async move {
            let req = ToolRequest {
                request_id: format!("req_{i}"),
                run_id: "run_bench".into(),
                agent_id: "agent_bench".into(),
                tool: "fs.read".into(),
                input: json!({"path": "src/notes.txt"}),
                timeout_ms: 30_000,
                created_at: None,
            };
            audit.append(record(
                i,
                "tool.call",
                json!({"tool": req.tool, "input": req.input}),
            ))?;
            let resp = runtime.call(&req).await;
            ensure!(resp.ok, "fs.read failed: {:?}", resp.error);
            audit.append(record(i, "tool.result", serde_json::to_value(&resp)?))?;
            Ok(())
        }
    })
    .await?;

    eprintln!("tools: baseline, plain read and append");
    let plain = dir.path().join("plain.jsonl");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&plain)?;
    let path = workspace.join("src/notes.txt");
    let (base_secs, mut base_lat) = measure(args.calls, |i| {
        let path = &path;
        let mut file: &std::fs::File = &file;
        async move {
            let call =
                serde_json::to_vec(&record(i, "tool.call", json!({"path": "src/notes.txt"})))?;
            file.write_all(&call)?;
            file.write_all(b"\n")?;
            let text = tokio::fs::read_to_string(path).await?;
            let result = serde_json::to_vec(&record(i, "tool.result", json!({"content": text})))?;
            file.write_all(&result)?;
            file.write_all(b"\n")?;
            Ok(())
        }
    })
    .await?;

    let audited = std::fs::read_dir(dir.path().join("audit"))?
        .map(|e| e.map(|e| std::fs::read_to_string(e.path()).map(|t| t.lines().count())))
        .collect::<Result<Result<Vec<_>, _>, _>>()??
        .into_iter()
        .sum::<usize>();
    ensure!(
        audited == 2 * args.calls,
        "audit holds {audited} lines, expected {}",
        2 * args.calls
    );

    let calls_per_s = args.calls as f64 / tools_secs;
    let base_per_s = args.calls as f64 / base_secs;
    println!(
        "{}",
        json!({
            "scenario": "tools",
            "tool": "fs.read",
            "calls": args.calls,
            "file_bytes": args.file_bytes,
            "calls_per_s": round3(calls_per_s),
            "p50_ms": round3(percentile_ms(&mut tools_lat, 50.0)),
            "p99_ms": round3(percentile_ms(&mut tools_lat, 99.0)),
            "baseline_calls_per_s": round3(base_per_s),
            "baseline_p50_ms": round3(percentile_ms(&mut base_lat, 50.0)),
            "baseline_p99_ms": round3(percentile_ms(&mut base_lat, 99.0)),
            "ratio": round3(calls_per_s / base_per_s),
        })
    );
    Ok(())
}

/// `shell.exec {"command": "true"}` through the tool runtime and its sandbox,
/// beside a plain spawn of `true` with piped output in its own process group.
async fn run_shell(args: ToolsArgs) -> anyhow::Result<()> {
    let calls = if args.calls == 20_000 {
        500
    } else {
        args.calls
    };
    let dir = tempfile::tempdir()?;
    let runtime = ToolRuntime::new(dir.path());
    eprintln!("tools: {calls} sandboxed shell.exec calls");
    let (tools_secs, mut tools_lat) = measure(calls, |i| {
        let runtime = &runtime;
        async move {
            let req = ToolRequest {
                request_id: format!("req_{i}"),
                run_id: "run_bench".into(),
                agent_id: "agent_bench".into(),
                tool: "shell.exec".into(),
                input: json!({"command": "true"}),
                timeout_ms: 30_000,
                created_at: None,
            };
            let resp = runtime.call(&req).await;
            ensure!(resp.ok, "shell.exec failed: {:?}", resp.error);
            Ok(())
        }
    })
    .await?;
    eprintln!("tools: baseline, {calls} plain spawns");
    let (base_secs, mut base_lat) = measure(calls, |_| async {
        let out = tokio::process::Command::new("true")
            .current_dir(dir.path())
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .output()
            .await?;
        ensure!(out.status.success(), "true failed");
        Ok(())
    })
    .await?;
    let calls_per_s = calls as f64 / tools_secs;
    let base_per_s = calls as f64 / base_secs;
    println!(
        "{}",
        json!({
            "scenario": "tools",
            "tool": "shell.exec",
            "calls": calls,
            "calls_per_s": round3(calls_per_s),
            "p50_ms": round3(percentile_ms(&mut tools_lat, 50.0)),
            "p99_ms": round3(percentile_ms(&mut tools_lat, 99.0)),
            "baseline_calls_per_s": round3(base_per_s),
            "baseline_p50_ms": round3(percentile_ms(&mut base_lat, 50.0)),
            "baseline_p99_ms": round3(percentile_ms(&mut base_lat, 99.0)),
            "ratio": round3(calls_per_s / base_per_s),
        })
    );
    Ok(())
}

fn record(i: usize, event_type: &str, payload: Value) -> AuditRecord {
    AuditRecord {
        event_id: format!("evt_{i}_{event_type}"),
        event_type: event_type.into(),
        ts: jiff::Timestamp::now().to_string(),
        run_id: "run_bench".into(),
        agent_id: "agent_bench".into(),
        actor: "agent".into(),
        seq: i as u64,
        payload: payload.as_object().cloned().unwrap_or_else(Map::new),
        redactions: Vec::new(),
    }
}

/// Runs `one(i)` for each call in turn; total seconds and per-call latency.
async fn measure<F, Fut>(calls: usize, mut one: F) -> anyhow::Result<(f64, Vec<Duration>)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut lat = Vec::with_capacity(calls);
    let start = Instant::now();
    for i in 0..calls {
        let t = Instant::now();
        one(i).await.with_context(|| format!("call {i}"))?;
        lat.push(t.elapsed());
    }
    Ok((start.elapsed().as_secs_f64(), lat))
}
