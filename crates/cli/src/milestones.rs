//! `garrison milestones emit`: sign a milestone ingest body and POST it
//! (milestone-ingest.md; docs/interface.md "Milestone signatures").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use garrison_contracts::milestone::{MilestoneEnvelope, MilestoneEvent};
use garrison_contracts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use serde_json::{Value, json};

use crate::config::{Global, Settings};
use garrison_client::{ServerUrl, error_message};
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::Query;
use garrison_milestones::summarize;

/// Where the signing secret comes from unless `--secret-env` says otherwise.
const SECRET_ENV: &str = "GARRISON_MILESTONE_SECRET";

/// A stuck endpoint must not hang a script forever.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Subcommand)]
pub enum MilestonesCmd {
    /// Sign a milestone and POST it to an ingest endpoint
    #[command(after_help = "\
FILE holds a full ingest body {\"idempotencyKey\", \"sentAtUtc\", \"event\"}, sent
byte for byte as written; or just the event object, which is wrapped with a
fresh idempotency key (emit-<ULID>) and sentAtUtc = now. Either way it is
validated first (docs/interface.md event rules) and nothing is sent if it is invalid.

The body is signed with HMAC-SHA256 over its canonical JSON form
(x-openclaw-signature) and stamped with the current UTC time
(x-openclaw-timestamp). The secret comes from $GARRISON_MILESTONE_SECRET, or
from the variable named by --secret-env; it is never read from a file or flag.

An https:// endpoint's certificate must chain to a public root (webpki) or
to a CA in the PEM file $GARRISON_TLS_CA_FILE names.

Prints the response status line and body. Exit status: 0 when the endpoint
answers 2xx with \"ok\":true (accepted or duplicate), 1 otherwise.

Example:
  export GARRISON_MILESTONE_SECRET=…
  garrison milestones emit --url http://127.0.0.1:8080/internal/milestones/ingest \\
      --file milestone.json")]
    Emit(EmitArgs),
    /// Print the milestone outbox's deliveries, one JSON line each
    #[command(after_help = "\
One line per delivery (a source event to one target), newest first, with its
latest state: sending, delivered, duplicate, retry, rejected or dead-letter.
Reads the local ledger unless --server is given.

Examples:
  garrison milestones deliveries
  garrison milestones deliveries --server http://127.0.0.1:7878")]
    Deliveries {
        /// Ask a running server (http:// or https://HOST:PORT) instead of reading the local ledger
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    /// Ingest endpoint (http:// or https://)
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Ingest body or bare event (JSON); `-` reads stdin
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Environment variable holding the signing secret
    #[arg(long, value_name = "NAME", default_value = SECRET_ENV)]
    pub secret_env: String,
}

pub fn run(global: &Global, cmd: MilestonesCmd) -> Result<ExitCode> {
    match cmd {
        MilestonesCmd::Emit(args) => emit(&args),
        MilestonesCmd::Deliveries { server } => deliveries(global, server.as_deref()),
    }
}

fn deliveries(global: &Global, server: Option<&str>) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let items: Vec<Value> = crate::runtime()?.block_on(async {
        match server {
            Some(url) => {
                let server = ServerUrl::parse(url)?;
                let token = settings.client_token()?;
                let (status, body) = server
                    .get_json("/api/milestones/deliveries", token.as_deref())
                    .await
                    .with_context(|| format!("cannot ask {url}"))?;
                if status != 200 {
                    bail!(
                        "HTTP {status} from {url}: {}",
                        error_message(body.to_string().as_bytes())
                    );
                }
                match body["items"].as_array() {
                    Some(items) => Ok(items.clone()),
                    None => bail!("{url} answered without an `items` list: {body}"),
                }
            }
            None => {
                let ledger = crate::local::open_ledger(&settings).await?;
                let query = Query {
                    event_type: Some(EventType::MilestoneDelivery),
                    ..Query::default()
                };
                let read = ledger.read(&query).await;
                ledger.close().await?;
                summarize(&read?)
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(anyhow::Error::from)
            }
        }
    })?;
    let mut out = std::io::stdout().lock();
    for item in items {
        writeln!(out, "{item}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn emit(args: &EmitArgs) -> Result<ExitCode> {
    let url = ServerUrl::parse(&args.url)?;
    let raw = read_input(&args.file)?;
    let body = ingest_body(&raw, &args.file)?;
    let secret = secret(&args.secret_env)?;
    let signature =
        sign(&secret, &body).with_context(|| format!("cannot sign {}", args.file.display()))?;
    let timestamp = now_utc();
    // ServerUrl drops a trailing slash from the path; put it back so the
    // request goes to exactly the URL given.
    let path = if args.url.ends_with('/') { "/" } else { "" };
    let headers = [
        ("content-type", "application/json"),
        (SIGNATURE_HEADER, signature.as_str()),
        (TIMESTAMP_HEADER, timestamp.as_str()),
    ];
    let response = crate::runtime()?
        .block_on(async {
            tokio::time::timeout(POST_TIMEOUT, url.post(path, &headers, &body))
                .await
                .map_err(|_| anyhow::anyhow!("no answer within {}s", POST_TIMEOUT.as_secs()))?
                .map_err(anyhow::Error::from)
        })
        .with_context(|| format!("POST {} failed", args.url))?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", response.status_line)?;
    out.write_all(&response.body)?;
    if !response.body.ends_with(b"\n") {
        writeln!(out)?;
    }
    out.flush()?;
    let ok = serde_json::from_slice::<Value>(&response.body)
        .is_ok_and(|v| v.get("ok") == Some(&Value::Bool(true)));
    Ok(if (200..300).contains(&response.status) && ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut raw)
            .context("cannot read stdin")?;
        Ok(raw)
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

/// The bytes to send: a full ingest body as given, or a bare event wrapped
/// into one. Validated either way, so an invalid milestone is never signed.
fn ingest_body(raw: &[u8], file: &Path) -> Result<Vec<u8>> {
    let name = file.display();
    // JSON as the ingest reads it (unpaired surrogate escapes included).
    let doc: Value = garrison_contracts::js_json::parse_value(raw)
        .with_context(|| format!("{name} is not valid JSON"))?;
    let Some(obj) = doc.as_object() else {
        bail!("{name} must hold a JSON object (an ingest body or a milestone event)");
    };
    if obj.contains_key("event") || obj.contains_key("idempotencyKey") {
        MilestoneEnvelope::from_value(&doc)
            .with_context(|| format!("{name} is not a valid milestone ingest body"))?;
        return Ok(raw.to_vec());
    }
    MilestoneEvent::from_value(&doc)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{name} is not a valid milestone event"))?;
    let envelope = json!({
        "idempotencyKey": format!("emit-{}", ulid::Ulid::new()),
        "sentAtUtc": now_utc(),
        "event": doc,
    });
    Ok(serde_json::to_vec(&envelope)?)
}

fn secret(var: &str) -> Result<Vec<u8>> {
    match std::env::var_os(var) {
        None => {
            bail!("no signing secret: set {var} (or name another variable with --secret-env NAME)")
        }
        Some(v) if v.is_empty() => bail!("no signing secret: {var} is empty"),
        Some(v) => Ok(v.into_encoded_bytes()),
    }
}

/// Now as JS's `toISOString()` prints it: UTC, milliseconds, `Z`.
fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Value {
        json!({
            "milestoneId": "m-1",
            "timestampUtc": "2026-02-28T12:34:56.000Z",
            "scope": "garrison",
            "claim": "signing works",
            "evidence": [{"type": "log", "path": "a.log", "summary": "ok"}],
            "riskStatus": "on-track",
            "nextAction": "ship"
        })
    }

    #[test]
    fn full_bodies_are_sent_as_written() {
        let raw = format!(
            "{{ \"idempotencyKey\": \"k-1\",\n \"event\": {} }}\n",
            event()
        );
        let body = ingest_body(raw.as_bytes(), Path::new("f.json")).unwrap();
        assert_eq!(body, raw.as_bytes());
    }

    #[test]
    fn bare_events_are_wrapped() {
        let raw = serde_json::to_vec(&event()).unwrap();
        let body = ingest_body(&raw, Path::new("f.json")).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let key = v["idempotencyKey"].as_str().unwrap();
        assert!(key.starts_with("emit-") && key.len() == 5 + 26, "{key}");
        assert!(garrison_contracts::parse_timestamp(v["sentAtUtc"].as_str().unwrap()).is_some());
        assert_eq!(v["event"], event());
    }

    #[test]
    fn invalid_input_is_refused_with_a_reason() {
        let mut bad = event();
        bad["riskStatus"] = json!("fine");
        let e = ingest_body(&serde_json::to_vec(&bad).unwrap(), Path::new("f.json")).unwrap_err();
        assert!(format!("{e:#}").contains("riskStatus"), "{e:#}");
        let e = ingest_body(br#"{"event": {}}"#, Path::new("f.json")).unwrap_err();
        assert!(format!("{e:#}").contains("idempotencyKey"), "{e:#}");
        assert!(ingest_body(b"[1]", Path::new("f.json")).is_err());
        assert!(ingest_body(b"{", Path::new("f.json")).is_err());
    }

    #[test]
    fn timestamps_look_like_to_iso_string() {
        let t = now_utc();
        assert_eq!(t.len(), "2026-02-28T12:34:56.000Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    }
}
