//! `appleseed`: ingest + projection of a JSONL file of runtime event
//! envelopes into a fresh state dir. Baseline (same process, same file): read
//! it, JSON-parse every line, and append the raw lines to one file with a
//! single fsync — the least any durable ingest must do.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use garrison_appleseed::Appleseed;
use serde_json::{Value, json};

use crate::stats::round3;

#[derive(Args)]
pub struct AppleseedArgs {
    /// Envelopes in the generated file (alternating session_started / session_feedback).
    #[arg(long, default_value_t = 100_000)]
    envelopes: usize,
}

fn envelope(i: usize) -> Value {
    let session = format!("bench-session-{}", i / 2);
    let mut event = json!({
        "schema_version": "1.1",
        "event_id": format!("bench-event-{i}"),
        "event_kind": "session_started",
        "occurred_at": "2026-03-13T18:22:39+00:00",
        "session_id": session,
        "task": "review postgres migration rollback safety",
        "selected_skill_ids": ["code_review"],
    });
    if !i.is_multiple_of(2) {
        event["event_kind"] = json!("session_feedback");
        event["status"] = json!(if i.is_multiple_of(3) {
            "failure"
        } else {
            "success"
        });
        event["score"] = json!((i % 10) as f64 / 10.0);
        event["missing_capabilities"] = json!(["database migrations"]);
    }
    json!({
        "contract_name": "openclaw_appleseed.runtime_event",
        "contract_version": "1.0",
        "envelope_id": format!("bench-envelope-{i}"),
        "recorded_at": "2026-03-13T18:22:41+00:00",
        "source": "garrison-bench",
        "metadata": {"operator": "bench"},
        "event": event,
    })
}

fn parse_lines(text: &str) -> anyhow::Result<Vec<Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("parsing an envelope line"))
        .collect()
}

pub fn run(args: AppleseedArgs) -> anyhow::Result<()> {
    let n = args.envelopes;
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("envelopes.jsonl");
    eprintln!("appleseed: generating {n} envelopes");
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&envelope(i).to_string());
        text.push('\n');
    }
    std::fs::write(&input, &text)?;
    drop(text);

    eprintln!("appleseed: ingest + projection");
    let start = Instant::now();
    let payload = Value::Array(parse_lines(&std::fs::read_to_string(&input)?)?);
    let out = Appleseed::open(tmp.path().join("state")).ingest(&payload)?;
    let garrison_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(out.stored.len() == n, "stored {} of {n}", out.stored.len());
    drop(payload);

    eprintln!("appleseed: baseline (parse + append + one fsync)");
    let start = Instant::now();
    let raw = std::fs::read_to_string(&input)?;
    let parsed = parse_lines(&raw)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(tmp.path().join("baseline.jsonl"))?;
    let mut buf = Vec::with_capacity(raw.len());
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.sync_all()?;
    let baseline_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(parsed.len() == n, "baseline parsed {} of {n}", parsed.len());

    let rate = n as f64 / garrison_s;
    let baseline = n as f64 / baseline_s;
    println!(
        "{}",
        json!({
            "scenario": "appleseed",
            "envelopes": n,
            "envelopes_per_s": round3(rate),
            "projected": out.projected.len(),
            "baseline_envelopes_per_s": round3(baseline),
            "ratio": round3(rate / baseline),
        })
    );
    Ok(())
}
