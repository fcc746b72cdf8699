//! `garrison jobs …`: scheduler jobs admin through a running server.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use crate::config::{Global, Settings};
use garrison_client::{ServerUrl, encode, error_message};

const AFTER_HELP: &str = "\
A job starts a run of its agent with its message each time it fires.
Schedules: `@every <duration>` in Go's duration format (`@every 30m`,
`@every 1h30m`, `@every 1.5h`; at least 1s) or a one-shot RFC3339 time
(`2026-02-18T09:00:00Z`). Cron expressions are refused. Missed windows are
not replayed: after downtime an `@every` job fires once and counts on from
then; a one-shot whose time passed while no scheduler ran is marked `missed`.

The server is --server (or GARRISON_SERVER, default http://127.0.0.1:7878);
the token is GARRISON_API_TOKEN, else <data-dir>/api-token.

Examples:
  garrison jobs create --id daily-report --agent agent_default \\
      --schedule '@every 24h' --message 'Generate the status report'
  garrison jobs create --file job.json
  garrison jobs list
  garrison jobs show daily-report
  garrison jobs fires daily-report --limit 5
  garrison jobs update daily-report --schedule '@every 12h'
  garrison jobs disable daily-report
  garrison jobs delete daily-report";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct JobsArgs {
    /// The running server (http:// or https://HOST:PORT)
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "GARRISON_SERVER",
        default_value = "http://127.0.0.1:7878"
    )]
    pub server: String,
    #[command(subcommand)]
    pub cmd: JobsCmd,
}

#[derive(Debug, Subcommand)]
pub enum JobsCmd {
    /// List jobs with their next run and last outcome
    #[command(
        after_help = "Columns: JOB, SCHEDULE, ENABLED, NEXT RUN (UTC; - when disabled or
done), LAST OUTCOME (completed, failed: reason, launch failed: reason,
running, missed, …) and FIRES. --json prints the server's answer instead.

Examples:
  garrison jobs list
  garrison jobs list --json"
    )]
    List {
        /// Print the JSON answer instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print one job as JSON
    #[command(after_help = "Example:\n  garrison jobs show daily-report")]
    Show {
        /// Job id
        id: String,
    },
    /// Print a job's latest fires as JSON, newest first
    #[command(after_help = "Example:\n  garrison jobs fires daily-report --limit 5")]
    Fires {
        /// Job id
        id: String,
        /// How many fires (1-50)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=50))]
        limit: u16,
    },
    /// Create a job from flags or from a JSON file
    #[command(after_help = "\
With --file, the file (or `-` for stdin) holds the job as the contract writes
it: {\"job_id\", \"agent_id\", \"schedule\", \"message\", \"mode\", \"enabled\", …}.

Examples:
  garrison jobs create --id daily-report --agent agent_default \\
      --schedule '@every 24h' --message 'Generate the status report'
  garrison jobs create --id launch-check --agent agent_default \\
      --schedule 2026-03-01T09:00:00Z --message 'Check the launch' --mode main_like
  garrison jobs create --file job.json")]
    Create(CreateArgs),
    /// Change a job: only the given fields, or replace it with --file
    #[command(after_help = "Examples:
  garrison jobs update daily-report --schedule '@every 12h'
  garrison jobs update daily-report --message 'Generate the short report'
  garrison jobs update daily-report --file job.json")]
    Update(UpdateArgs),
    /// Delete a job (its past fires stay in the ledger)
    #[command(after_help = "Example:\n  garrison jobs delete daily-report")]
    Delete {
        /// Job id
        id: String,
    },
    /// Let a job fire again (an `@every` job counts from now)
    #[command(after_help = "Example:\n  garrison jobs enable daily-report")]
    Enable {
        /// Job id
        id: String,
    },
    /// Stop a job from firing
    #[command(after_help = "Example:\n  garrison jobs disable daily-report")]
    Disable {
        /// Job id
        id: String,
    },
}

/// `mode` of a job.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    Isolated,
    #[value(name = "main_like")]
    MainLike,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Isolated => "isolated",
            Mode::MainLike => "main_like",
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Job id (letters, digits, `.`, `_`, `-`)
    #[arg(long, value_name = "ID", required_unless_present = "file")]
    pub id: Option<String>,
    /// Agent whose run each fire starts
    #[arg(long, value_name = "AGENT_ID", required_unless_present = "file")]
    pub agent: Option<String>,
    /// `@every <duration>` or an RFC3339 time
    #[arg(long, value_name = "SCHEDULE", required_unless_present = "file")]
    pub schedule: Option<String>,
    /// The message each run gets
    #[arg(long, value_name = "TEXT", required_unless_present = "file")]
    pub message: Option<String>,
    /// Session mode of the runs
    #[arg(long, value_enum, default_value = "isolated")]
    pub mode: Mode,
    /// Create the job disabled
    #[arg(long)]
    pub disabled: bool,
    /// Only UTC is supported (the default)
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// The whole job as JSON (`-` for stdin)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["id", "agent", "schedule", "message", "disabled", "timezone"])]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Job id
    pub id: String,
    /// Agent whose run each fire starts
    #[arg(long, value_name = "AGENT_ID")]
    pub agent: Option<String>,
    /// `@every <duration>` or an RFC3339 time (restarts the interval)
    #[arg(long, value_name = "SCHEDULE")]
    pub schedule: Option<String>,
    /// The message each run gets
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Session mode of the runs
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Only UTC is supported
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Replace the whole job with this JSON (`-` for stdin)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["agent", "schedule", "message", "mode", "timezone"])]
    pub file: Option<PathBuf>,
}

pub fn run(global: &Global, args: JobsArgs) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let client = Client {
        server: ServerUrl::parse(&args.server)?,
        url: args.server.clone(),
        token: settings.client_token()?,
    };
    crate::runtime()?.block_on(async {
        match args.cmd {
            JobsCmd::List { json } => {
                let answer = client.call("GET", "/api/admin/jobs", None).await?;
                if json {
                    print_json(&answer)?;
                } else {
                    print!("{}", table(answer["jobs"].as_array().map_or(&[][..], |v| v)));
                }
            }
            JobsCmd::Show { id } => {
                print_json(&client.call("GET", &job_path(&id), None).await?)?;
            }
            JobsCmd::Fires { id, limit } => {
                let path = format!("{}/fires?limit={limit}", job_path(&id));
                print_json(&client.call("GET", &path, None).await?)?;
            }
            JobsCmd::Create(a) => {
                let body = match &a.file {
                    Some(file) => read_json(file)?,
                    None => create_body(&a),
                };
                print_json(&client.call("POST", "/api/admin/jobs", Some(&body)).await?)?;
            }
            JobsCmd::Update(a) => {
                let path = job_path(&a.id);
                let answer = match &a.file {
                    Some(file) => client.call("PUT", &path, Some(&read_json(file)?)).await?,
                    None => {
                        let body = update_body(&a);
                        if body.as_object().is_some_and(Map::is_empty) {
                            bail!(
                                "nothing to change: give --agent, --schedule, --message, --mode, --timezone or --file"
                            );
                        }
                        client.call("PATCH", &path, Some(&body)).await?
                    }
                };
                print_json(&answer)?;
            }
            JobsCmd::Delete { id } => {
                print_json(&client.call("DELETE", &job_path(&id), None).await?)?;
            }
            JobsCmd::Enable { id } => {
                let body = json!({"enabled": true});
                print_json(&client.call("PATCH", &job_path(&id), Some(&body)).await?)?;
            }
            JobsCmd::Disable { id } => {
                let body = json!({"enabled": false});
                print_json(&client.call("PATCH", &job_path(&id), Some(&body)).await?)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

struct Client {
    server: ServerUrl,
    url: String,
    token: Option<String>,
}

impl Client {
    /// The JSON answer of a 2xx; anything else is an error with the server's message.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, answer) = self
            .server
            .send_json(method, path, self.token.as_deref(), body)
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        if !(200..300).contains(&status) {
            bail!(
                "HTTP {status} from {}: {}",
                self.url,
                error_message(answer.to_string().as_bytes())
            );
        }
        Ok(answer)
    }
}

fn job_path(id: &str) -> String {
    format!("/api/admin/jobs/{}", encode(id))
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn read_json(file: &Path) -> Result<Value> {
    let raw = if file == Path::new("-") {
        let mut raw = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut raw)
            .context("cannot read stdin")?;
        raw
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let v: Value = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    if !v.is_object() {
        bail!("{} must hold a JSON object (one job)", file.display());
    }
    Ok(v)
}

fn create_body(a: &CreateArgs) -> Value {
    let mut body = json!({
        "job_id": a.id,
        "agent_id": a.agent,
        "schedule": a.schedule,
        "message": a.message,
        "mode": a.mode.as_str(),
        "enabled": !a.disabled,
    });
    if let (Some(tz), Some(obj)) = (&a.timezone, body.as_object_mut()) {
        obj.insert("timezone".into(), json!(tz));
    }
    body
}

fn update_body(a: &UpdateArgs) -> Value {
    let mut body = Map::new();
    let fields = [
        ("agent_id", a.agent.clone()),
        ("schedule", a.schedule.clone()),
        ("message", a.message.clone()),
        ("mode", a.mode.map(|m| m.as_str().to_string())),
        ("timezone", a.timezone.clone()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            body.insert(name.into(), Value::String(v));
        }
    }
    Value::Object(body)
}

/// The `list` table: one line per job, columns padded to their widest cell.
fn table(jobs: &[Value]) -> String {
    if jobs.is_empty() {
        return "no jobs\n".into();
    }
    let cell = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut rows = vec![[
        "JOB".to_string(),
        "SCHEDULE".into(),
        "ENABLED".into(),
        "NEXT RUN".into(),
        "LAST OUTCOME".into(),
        "FIRES".into(),
    ]];
    for j in jobs {
        let enabled = if j["enabled"] == Value::Bool(true) {
            "yes"
        } else {
            "no"
        };
        let mut outcome = cell(&j["last_outcome"]);
        if outcome.chars().count() > 60 {
            outcome = outcome.chars().take(59).chain(['…']).collect();
        }
        rows.push([
            cell(&j["job_id"]),
            cell(&j["schedule"]),
            enabled.into(),
            cell(&j["next_run_at"]),
            outcome,
            cell(&j["fires"]),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_columns_and_pads_them() {
        let t = table(&[
            json!({"job_id": "a", "schedule": "@every 1h", "enabled": true,
                   "next_run_at": "2026-03-01T10:00:00.000Z", "last_outcome": null, "fires": 0}),
            json!({"job_id": "long-job", "schedule": "2026-03-01T09:00:00Z", "enabled": false,
                   "next_run_at": null, "last_outcome": "failed: model unavailable", "fires": 1}),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("JOB       SCHEDULE"), "{t}");
        assert!(
            lines[0].contains("NEXT RUN") && lines[0].contains("LAST OUTCOME"),
            "{t}"
        );
        assert!(
            lines[1].contains("2026-03-01T10:00:00.000Z") && lines[1].contains("yes"),
            "{t}"
        );
        assert!(
            lines[2].contains("failed: model unavailable") && lines[2].contains("no"),
            "{t}"
        );
        assert_eq!(table(&[]), "no jobs\n");
    }
}
