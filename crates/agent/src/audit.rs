//! The audit log (contract §3): append-only JSONL at
//! `<data-dir>/agents/<agent_id>/audit/YYYY-MM-DD.jsonl` (UTC date of the
//! record's `ts`), every record redacted before it is written.
//!
//! Each record is one `write` of one whole line on a file opened with
//! `O_APPEND` and held under an exclusive `flock`, so writers in this and
//! other processes never interleave partial lines and nothing already
//! written is touched.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use garrison_contracts::openclawssy::AuditRecord;
use garrison_contracts::secrets::{REDACTED, redact};
use serde_json::{Map, Value};

/// Why an audit line could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("agent id `{0}` cannot name an audit directory")]
    AgentId(String),
    #[error("record timestamp `{0}` is not RFC 3339")]
    Timestamp(String),
    #[error("cannot write audit log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode audit record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Whether `id` is safe as one path component: non-empty, at most 128
/// bytes of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `<data-dir>/agents/<agent_id>`, checked.
pub fn agent_dir(data_dir: &Path, agent_id: &str) -> Result<PathBuf, AuditError> {
    if !valid_agent_id(agent_id) {
        return Err(AuditError::AgentId(agent_id.to_string()));
    }
    Ok(data_dir.join("agents").join(agent_id))
}

/// Scrubs secrets out of audit payloads and run events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// Exact values that must never be written (API keys in use, stored
    /// secrets), longest first so a value containing another goes whole.
    secrets: Vec<String>,
}

/// Keys whose values are credentials whatever they look like. Matched on
/// the lower-cased key's end, so `x_api_key` counts and `max_tokens` does not.
const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "access_key",
    "private_key",
    "credential",
    "credentials",
    "cookie",
];

impl Redactor {
    /// Redacts the built-in patterns plus every value in `secrets`.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Adds more secret values.
    pub fn with_secrets(mut self, more: impl IntoIterator<Item = String>) -> Redactor {
        let mut all = std::mem::take(&mut self.secrets);
        all.extend(more);
        Redactor::new(all)
    }

    /// `text` with configured secrets and secret-like spans replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        redact(&out)
    }

    /// Redacts `payload` in place; returns the JSON paths replaced, rooted
    /// at `root` (`payload.input.token`, `payload.args[1]`).
    pub fn payload(&self, root: &str, payload: &mut Map<String, Value>) -> Vec<String> {
        let mut paths = Vec::new();
        for (key, value) in payload.iter_mut() {
            self.value(&format!("{root}.{key}"), Some(key), value, &mut paths);
        }
        paths
    }

    fn value(&self, path: &str, key: Option<&str>, v: &mut Value, paths: &mut Vec<String>) {
        let sensitive_key = key.is_some_and(|k| {
            let k = k.to_ascii_lowercase();
            SENSITIVE_KEYS.iter().any(|s| k.ends_with(s))
        });
        match v {
            Value::String(s) if sensitive_key && !s.is_empty() && s != REDACTED => {
                *s = REDACTED.to_string();
                paths.push(path.to_string());
            }
            Value::Number(_) if sensitive_key => {
                *v = Value::String(REDACTED.to_string());
                paths.push(path.to_string());
            }
            Value::String(s) => {
                let scrubbed = self.text(s);
                if scrubbed != *s {
                    *s = scrubbed;
                    paths.push(path.to_string());
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(&format!("{path}[{i}]"), None, item, paths);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.value(&format!("{path}.{k}"), Some(k), item, paths);
                }
            }
            _ => {}
        }
    }
}

/// One agent's audit directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    dir: PathBuf,
    redactor: Redactor,
}

impl AuditLog {
    /// The log of `agent_id` under `data_dir`.
    pub fn for_agent(data_dir: &Path, agent_id: &str) -> Result<AuditLog, AuditError> {
        Ok(AuditLog::at(agent_dir(data_dir, agent_id)?.join("audit")))
    }

    /// A log in `dir` (files `YYYY-MM-DD.jsonl` directly inside it).
    pub fn at(dir: impl Into<PathBuf>) -> AuditLog {
        AuditLog {
            dir: dir.into(),
            redactor: Redactor::default(),
        }
    }

    /// Also redacts every value in `secrets`.
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = String>) -> AuditLog {
        self.redactor = self.redactor.with_secrets(secrets);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The file a record with timestamp `ts` goes to.
    pub fn file_for(&self, ts: &str) -> Result<PathBuf, AuditError> {
        let t: jiff::Timestamp = ts
            .parse()
            .map_err(|_| AuditError::Timestamp(ts.to_string()))?;
        let date = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        Ok(self.dir.join(format!("{date}.jsonl")))
    }

    /// Redacts `record` (adding the replaced paths to `redactions`) and
    /// appends it as one line. Returns the record as written.
    pub fn append(&self, mut record: AuditRecord) -> Result<AuditRecord, AuditError> {
        let mut paths = self.redactor.payload("payload", &mut record.payload);
        for p in paths.drain(..) {
            if !record.redactions.contains(&p) {
                record.redactions.push(p);
            }
        }
        let path = self.file_for(&record.ts)?;
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        let written = file.write_all(&line);
        let _ = file.unlock();
        written.map_err(io)?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(ts: &str, payload: Value) -> AuditRecord {
        AuditRecord {
            event_id: "evt_1".into(),
            event_type: "tool.call".into(),
            ts: ts.into(),
            run_id: "run_1".into(),
            agent_id: "agent_default".into(),
            actor: "agent".into(),
            seq: 1,
            payload: payload.as_object().cloned().unwrap_or_default(),
            redactions: Vec::new(),
        }
    }

    #[test]
    fn agent_ids_are_path_safe() {
        assert!(valid_agent_id("agent_default"));
        assert!(valid_agent_id("unit-1.2"));
        for bad in ["", ".", "..", "a/b", "a\\b", "a b", &"x".repeat(129)] {
            assert!(!valid_agent_id(bad), "{bad:?}");
        }
        assert!(agent_dir(Path::new("/d"), "../x").is_err());
    }

    #[test]
    fn redaction_lists_paths() {
        let r = Redactor::new(["hunter2-configured".to_string()]);
        let mut p = json!({
            "input": {"token": "abc", "path": "a.txt", "max_tokens": 5},
            "args": ["-H", "Authorization: Bearer abc.def-123", "plain"],
            "note": "the key is hunter2-configured here",
            "headers": {"Authorization": "Basic Zm9vOmJhcg=="},
            "pem": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----",
            "key": "sk-abcdefghijklmnopqrstuv"
        })
        .as_object()
        .cloned()
        .unwrap();
        let paths = r.payload("payload", &mut p);
        assert_eq!(
            paths,
            [
                "payload.input.token",
                "payload.args[1]",
                "payload.note",
                "payload.headers.Authorization",
                "payload.pem",
                "payload.key"
            ]
        );
        let text = Value::Object(p).to_string();
        for secret in [
            "hunter2",
            "abc.def-123",
            "Zm9vOmJhcg",
            "MII",
            "sk-abcdefghijklmnop",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("\"max_tokens\":5"));
        assert!(text.contains("a.txt"));
    }

    #[test]
    fn appends_lines_per_utc_day() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::for_agent(dir.path(), "agent_default")
            .unwrap()
            .with_secrets(["s3cr3t-value".to_string()]);
        let file = dir
            .path()
            .join("agents/agent_default/audit/2026-02-15.jsonl");
        // 23:30 at UTC-2 is the next UTC day.
        log.append(record("2026-02-15T23:59:59Z", json!({"a": "s3cr3t-value"})))
            .unwrap();
        log.append(record("2026-02-15T23:30:00-02:00", json!({})))
            .unwrap();
        let lines: Vec<AuditRecord> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].payload["a"], REDACTED);
        assert_eq!(lines[0].redactions, ["payload.a"]);
        assert!(
            dir.path()
                .join("agents/agent_default/audit/2026-02-16.jsonl")
                .exists()
        );
        assert!(matches!(
            log.append(record("yesterday", json!({}))),
            Err(AuditError::Timestamp(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn concurrent_writers_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path());
        let big = "x".repeat(64 * 1024);
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = log.clone();
                let big = big.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        let mut r = record("2026-02-15T00:00:00Z", json!({"blob": big}));
                        r.seq = t * 100 + i;
                        log.append(r).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(dir.path().join("2026-02-15.jsonl")).unwrap();
        let mut seqs: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<AuditRecord>(l).unwrap().seq)
            .collect();
        seqs.sort();
        assert_eq!(seqs.len(), 100);
        seqs.dedup();
        assert_eq!(seqs.len(), 100);
    }
}
