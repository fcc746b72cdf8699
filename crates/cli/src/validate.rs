//! `garrison validate KIND FILE [--strict]`: one JSON verdict line on stdout,
//! exit 0 iff allowed. Input problems are verdicts too, never bare errors, so
//! callers always get `{allow, code, reason, details}` to parse.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use garrison_contracts::{Code, Kind, Verdict, validate};
use serde_json::{Value, json};

#[derive(Debug, Args)]
#[command(after_help = "\
Kinds:
  assignment           assignment packet (operator-workflow contract)
  result               subagent_result_v1
  orchestrator-output  orchestrator output with ledger_delta and assignments
  worklog              worklog entry, array of entries, or JSONL (one entry per line)
  handoff              handoff bundle
  locks                {\"locks\":[{task_id, resource, active}…]}
  reconcile            {\"ledger\":[…],\"active_locks\":[…],\"events\":[…]}

Output is one JSON line: {\"allow\":…,\"code\":…,\"reason\":…,\"details\":{…}}.
`code` is OK when allowed, else one contract code (SCHEMA_INVALID,
MISSING_REQUIRED_INPUT, LOCK_CONFLICT, …). Exit status: 0 allowed, 1 denied
(including unreadable or non-JSON input), 2 usage error.

Examples:
  garrison validate assignment packet.json
  garrison validate result --strict result.json
  garrison validate worklog worklog.jsonl
  cat locks.json | garrison validate locks -")]
pub struct ValidateArgs {
    /// Document kind
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    pub kind: Kind,

    /// File to check, or `-` for stdin
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Also reject unknown fields (other than `x_*` extensions) at every level
    #[arg(long)]
    pub strict: bool,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse::<Kind>().map_err(|e| e.to_string())
}

pub fn run(args: ValidateArgs) -> ExitCode {
    let verdict = match load(&args.file, args.kind) {
        Ok(doc) => validate(args.kind, &doc, args.strict),
        Err(v) => v,
    };
    let line = serde_json::to_string(&verdict).unwrap_or_else(|e| {
        // Serialising a Verdict cannot fail; keep the output contract if it ever does.
        json!({"allow": false, "code": "SCHEMA_INVALID", "reason": e.to_string(), "details": {}})
            .to_string()
    });
    println!("{line}");
    if verdict.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reads and parses the input, or the verdict that explains why it cannot be.
fn load(file: &Path, kind: Kind) -> Result<Value, Verdict> {
    let stdin = file.as_os_str() == "-";
    let name = if stdin {
        "stdin".to_string()
    } else {
        file.display().to_string()
    };
    let details = || json!({"file": name});
    let text = if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            Verdict::deny(
                Code::SchemaInvalid,
                format!("cannot read stdin: {e}"),
                details(),
            )
        })?;
        s
    } else {
        match std::fs::read(file) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                Verdict::deny(
                    Code::SchemaInvalid,
                    format!("{name} is not UTF-8 text"),
                    details(),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Verdict::deny(
                    Code::MissingRequiredInput,
                    format!("{name} does not exist"),
                    details(),
                ));
            }
            Err(e) => {
                return Err(Verdict::deny(
                    Code::SchemaInvalid,
                    format!("cannot read {name}: {e}"),
                    details(),
                ));
            }
        }
    };
    if text.trim().is_empty() {
        return Err(Verdict::deny(
            Code::MissingRequiredInput,
            format!("{name} is empty"),
            details(),
        ));
    }
    // Editors on some systems save JSON with a byte order mark, which JSON
    // does not allow; serde's "expected value at line 1 column 1" would not
    // say why.
    if text.starts_with('\u{feff}') {
        return Err(Verdict::deny(
            Code::SchemaInvalid,
            format!(
                "{name} starts with a UTF-8 byte order mark (BOM), which JSON does not allow; \
                 save it as UTF-8 without a BOM"
            ),
            json!({"file": name, "line": 1, "column": 1}),
        ));
    }
    let jsonl = !stdin && file.extension().is_some_and(|e| e == "jsonl");
    match serde_json::from_str::<Value>(&text) {
        Ok(doc) if !jsonl => Ok(doc),
        // A worklog may be JSONL: one entry per line becomes an array.
        result if kind == Kind::Worklog => parse_jsonl(&text, &name).or_else(|v| match result {
            Ok(doc) => Ok(doc),
            Err(_) => Err(v),
        }),
        Ok(doc) => Ok(doc),
        Err(e) => Err(Verdict::deny(
            Code::SchemaInvalid,
            format!("{name} is not valid JSON: {e}"),
            json!({"file": name, "line": e.line(), "column": e.column()}),
        )),
    }
}

fn parse_jsonl(text: &str, name: &str) -> Result<Value, Verdict> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(line).map_err(|e| {
            Verdict::deny(
                Code::SchemaInvalid,
                format!("{name} line {} is not valid JSON: {e}", i + 1),
                json!({"file": name, "line": i + 1, "column": e.column()}),
            )
        })?;
        entries.push(entry);
    }
    Ok(Value::Array(entries))
}
