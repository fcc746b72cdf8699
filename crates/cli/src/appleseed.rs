//! `garrison appleseed ingest|openclaw-import|inspect|report|governance`
//! (appleseed-event-contract.md; docs/interface.md "Appleseed CLI").
//!
//! Exit status: 0 on success, 1 when the payload is rejected or the state
//! dir fails (nothing is written on a rejection), 2 for usage errors.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use garrison_appleseed::{
    Appleseed, Error, IngestOutcome, render_governance_markdown, render_inspection_markdown,
    render_session_markdown,
};
use serde_json::{Value, json};

use crate::config::{Global, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct AppleseedArgs {
    /// Appleseed state directory [default: <data-dir>/appleseed]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Input file (`-` reads stdin); `report` takes it more than once
    #[arg(long, value_name = "F")]
    pub file: Vec<PathBuf>,
    /// Output format [default: human-readable text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Also write the report under the state dir's reports/
    #[arg(long)]
    pub write_report: bool,
}

#[derive(Debug, Subcommand)]
pub enum AppleseedCmd {
    /// Validate runtime event envelopes (one, a list, or a batch) and store them
    #[command(after_help = "\
The whole payload is checked before anything is written; a rejection prints
the reason, exits 1 and leaves the state dir untouched. Envelopes already
stored (same envelope_id or event_id) are skipped. session_feedback events are
projected into projected_feedback.jsonl; session_started stays raw evidence.

Example:
  garrison appleseed ingest --file events.json --format json")]
    Ingest(AppleseedArgs),
    /// Import an OpenClaw operator-session artifact, or replay a handoff bundle
    #[command(after_help = "\
Adapts the artifact into a session_started envelope (plus a session_feedback
envelope when it has an outcome), ingests them, and writes the import,
handoff, handoff-bundle and runtime-session reports under reports/. Importing
the same artifact or bundle again stores nothing new.

Example:
  garrison appleseed openclaw-import --file session.json
  garrison appleseed openclaw-import --state-dir fresh \\
      --file .garrison/appleseed/reports/latest_openclaw_operator_handoff_bundle.json")]
    OpenclawImport(AppleseedArgs),
    /// Show each stored raw envelope beside its projected feedback record
    Inspect(AppleseedArgs),
    /// Session evidence bundle from payload files, without storing anything
    Report(AppleseedArgs),
    /// Evolution proposals, gate readiness, risk and rollback for an operator
    #[command(after_help = "\
Derives proposals from projected feedback (a prompt-metadata revision for a
skill scoring low on a task type; a routing proposal for a capability missing
in several sessions), runs the offline gate, and prints the governance report
(markdown by default). --write-report also writes the evolution, governance,
operator-review and dry-run promotion reports under reports/, the workflow
checkpoint latest_workflow_state.json, and one line of workflow_history.jsonl.

Example:
  garrison appleseed governance --format markdown --write-report")]
    Governance(AppleseedArgs),
}

pub fn run(global: &Global, cmd: AppleseedCmd) -> Result<ExitCode> {
    let (name, args) = match &cmd {
        AppleseedCmd::Ingest(a) => ("ingest", a),
        AppleseedCmd::OpenclawImport(a) => ("openclaw-import", a),
        AppleseedCmd::Inspect(a) => ("inspect", a),
        AppleseedCmd::Report(a) => ("report", a),
        AppleseedCmd::Governance(a) => ("governance", a),
    };
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => Settings::load(global)?.data_dir.join("appleseed"),
    };
    let app = Appleseed::open(state_dir);
    let files = &args.file;
    let needs_one = matches!(name, "ingest" | "openclaw-import");
    if needs_one && files.len() != 1 || name == "report" && files.is_empty() {
        eprintln!(
            "garrison appleseed {name}: --file F is required{}",
            if needs_one { " (once)" } else { "" }
        );
        return Ok(ExitCode::from(2));
    }
    let result = match &cmd {
        AppleseedCmd::Ingest(a) => ingest(&app, a),
        AppleseedCmd::OpenclawImport(a) => import(&app, a),
        AppleseedCmd::Inspect(a) => inspect(&app, a),
        AppleseedCmd::Report(a) => report(&app, a),
        AppleseedCmd::Governance(a) => governance(&app, a),
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast_ref::<Error>() {
            Some(err) if err.is_rejection() => {
                eprintln!("garrison appleseed {name}: {err}");
                Ok(ExitCode::FAILURE)
            }
            _ => Err(e),
        },
    }
}

/// Reads and parses one input; a parse failure is a rejection.
fn read_json(path: &Path) -> Result<Value> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{} is not valid JSON: {e}", path.display())).into())
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn print_ingest_text(o: &IngestOutcome) {
    println!(
        "stored {} envelope(s), skipped {} duplicate(s), projected {} feedback record(s)",
        o.stored.len(),
        o.skipped.len(),
        o.projected.len()
    );
    for e in &o.stored {
        println!(
            "  stored    {} {} (event {})",
            e.pointer("/event/event_kind")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            e.get("envelope_id").and_then(Value::as_str).unwrap_or("?"),
            e.pointer("/event/event_id")
                .and_then(Value::as_str)
                .unwrap_or("?"),
        );
    }
    for s in &o.skipped {
        println!("  skipped   {} ({})", s.envelope_id, s.reason);
    }
    for r in &o.projected {
        println!(
            "  projected {} <- envelope {}",
            r.feedback_id, r.source_envelope_id
        );
    }
}

fn ingest(app: &Appleseed, a: &AppleseedArgs) -> Result<ExitCode> {
    let payload = read_json(&a.file[0])?;
    let o = app.ingest(&payload)?;
    warn_all(&o.warnings);
    match a.format {
        Some(Format::Json) => print_json(&o.summary())?,
        _ => print_ingest_text(&o),
    }
    Ok(ExitCode::SUCCESS)
}

fn import(app: &Appleseed, a: &AppleseedArgs) -> Result<ExitCode> {
    let input = read_json(&a.file[0])?;
    let o = app.openclaw_import(&input)?;
    warn_all(&o.ingest.warnings);
    let reports: Vec<String> = o.reports.iter().map(|p| p.display().to_string()).collect();
    match a.format {
        Some(Format::Json) => {
            let mut v = o.ingest.summary();
            if let Some(m) = v.as_object_mut() {
                m.insert("input_kind".into(), json!(o.kind.as_str()));
                m.insert("session_id".into(), json!(o.session_id));
                m.insert("reports".into(), json!(reports));
                m.insert("handoff".into(), o.handoff.clone());
            }
            print_json(&v)?;
        }
        _ => {
            println!("imported {} ({})", o.session_id, o.kind.as_str());
            print_ingest_text(&o.ingest);
            println!("reports:");
            for r in &reports {
                println!("  {r}");
            }
            if let Some(next) = o.handoff.get("next_action").and_then(Value::as_str) {
                println!("next action: {next}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(app: &Appleseed, a: &AppleseedArgs) -> Result<ExitCode> {
    let i = app.inspect()?;
    warn_all(&i.warnings);
    match a.format {
        Some(Format::Json) => print_json(&i.report)?,
        _ => print!("{}", render_inspection_markdown(&i.report)),
    }
    if a.write_report {
        for p in app.write_inspection(&i)? {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(app: &Appleseed, a: &AppleseedArgs) -> Result<ExitCode> {
    let payloads = a
        .file
        .iter()
        .map(|f| read_json(f))
        .collect::<Result<Vec<_>>>()?;
    let reports = app.report(&payloads)?;
    match a.format {
        Some(Format::Json) => match reports.as_slice() {
            [one] => print_json(one)?,
            many => print_json(&Value::Array(many.to_vec()))?,
        },
        _ => {
            let text: Vec<String> = reports.iter().map(render_session_markdown).collect();
            print!("{}", text.join("\n"));
        }
    }
    if a.write_report {
        for p in app.write_session_reports(&reports)? {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn governance(app: &Appleseed, a: &AppleseedArgs) -> Result<ExitCode> {
    let g = app.governance()?;
    warn_all(&g.warnings);
    match a.format {
        Some(Format::Json) => print_json(&g.governance)?,
        _ => print!("{}", render_governance_markdown(&g.governance)),
    }
    if a.write_report {
        for p in app.write_governance(&g)? {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
