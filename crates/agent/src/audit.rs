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

/// Shortest secret value scrubbed by value, in bytes. A shorter value (a
/// PIN, a one-letter flag) would match everywhere and mangle every text it
/// touches, so it is left to the pattern rules; the secret store warns when
/// one is stored.
pub const MIN_SECRET_BYTES: usize = 6;

/// Scrubs secrets out of tool output, audit payloads, run events, records,
/// sessions and unit reports.
///
/// Two layers: every configured value (stored secrets, API keys in use) in
/// each form a program may print it — as is, base64 (standard and URL-safe,
/// padded or not, and the offset-independent part of it inside a longer
/// base64 stream), hex (lower and upper case) and percent-encoded (either
/// case, `+` for a space or not) — and, on top, the secret-like patterns of
/// [`garrison_contracts::secrets`]. All forms of all values are matched in
/// one pass over the text (one Aho-Corasick automaton, leftmost-longest),
/// so the cost is linear in the text whatever the number of secrets.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The values, sorted and deduplicated.
    secrets: Vec<String>,
    /// Every form of every value, for [`Redactor::secrets_only`].
    matcher: Option<aho_corasick::AhoCorasick>,
}

impl PartialEq for Redactor {
    fn eq(&self, other: &Redactor) -> bool {
        self.secrets == other.secrets
    }
}

impl Eq for Redactor {}

impl std::fmt::Debug for Redactor {
    /// Never the values: only how many there are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
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

/// The spellings of `value` that are scrubbed: see [`Redactor`].
fn forms(value: &str) -> Vec<String> {
    use crate::encoding::{
        BASE64_STD, BASE64_URL, base64_cores, base64_encode, hex_encode, percent_encode,
    };
    let b = value.as_bytes();
    let mut out = vec![value.to_string()];
    for alphabet in [BASE64_STD, BASE64_URL] {
        out.push(base64_encode(b, alphabet, true));
        out.push(base64_encode(b, alphabet, false));
        out.extend(base64_cores(b, alphabet));
    }
    for upper in [false, true] {
        out.push(hex_encode(b, upper));
        for plus in [false, true] {
            out.push(percent_encode(b, upper, plus));
        }
    }
    // A core of a short value may be shorter than the value itself; never
    // scrub anything shorter than the shortest value scrubbed.
    out.retain(|f| f.len() >= MIN_SECRET_BYTES);
    out
}

impl Redactor {
    /// Redacts the built-in patterns plus every value in `secrets` (values
    /// shorter than [`MIN_SECRET_BYTES`] are left to the patterns).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_BYTES)
            .collect();
        secrets.sort();
        secrets.dedup();
        let mut needles: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
        needles.sort();
        needles.dedup();
        let matcher = if needles.is_empty() {
            None
        } else {
            match aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&needles)
            {
                Ok(m) => Some(m),
                Err(e) => {
                    // Only a pattern set beyond the automaton's limits gets
                    // here; scrubbing must not silently stop, so every text
                    // is then replaced whole (see `secrets_only`).
                    tracing::error!(error = %e, "cannot build the secret matcher");
                    None
                }
            }
        };
        Redactor { secrets, matcher }
    }

    /// Adds more secret values.
    pub fn with_secrets(mut self, more: impl IntoIterator<Item = String>) -> Redactor {
        let mut all = std::mem::take(&mut self.secrets);
        all.extend(more);
        Redactor::new(all)
    }

    /// This redactor's values plus `other`'s.
    pub fn merged(&self, other: &Redactor) -> Redactor {
        if other.secrets.is_empty() {
            return self.clone();
        }
        self.clone().with_secrets(other.secrets.iter().cloned())
    }

    /// How many values are scrubbed by value.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every form of every configured value replaced by
    /// [`REDACTED`] (no pattern rules): what tool output gets before it
    /// goes back to the model, and unit reports before they are recorded.
    pub fn secrets_only<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        use std::borrow::Cow;
        let Some(m) = &self.matcher else {
            if self.secrets.is_empty() {
                return Cow::Borrowed(text);
            }
            // No matcher although there are values: fail closed.
            return Cow::Owned(REDACTED.to_string());
        };
        let Some(first) = m.find(text) else {
            return Cow::Borrowed(text);
        };
        let mut out = String::with_capacity(text.len());
        out.push_str(&text[..first.start()]);
        out.push_str(REDACTED);
        let rest = &text[first.end()..];
        m.replace_all_with(rest, &mut out, |_, _, dst| {
            dst.push_str(REDACTED);
            true
        });
        Cow::Owned(out)
    }

    /// [`Redactor::secrets_only`] over bytes (captured program output,
    /// files); `None` when nothing matched.
    pub fn secrets_only_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let Some(m) = &self.matcher else {
            if self.secrets.is_empty() {
                return None;
            }
            return Some(REDACTED.as_bytes().to_vec());
        };
        m.find(bytes)?;
        let mut out = Vec::with_capacity(bytes.len());
        m.replace_all_with_bytes(bytes, &mut out, |_, _, dst| {
            dst.extend_from_slice(REDACTED.as_bytes());
            true
        });
        Some(out)
    }

    /// Every string in `value` scrubbed with [`Redactor::secrets_only`].
    pub fn secrets_in_json(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let std::borrow::Cow::Owned(t) = self.secrets_only(s) {
                    *s = t;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.secrets_in_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.secrets_in_json(v)),
            _ => {}
        }
    }

    /// `text` with configured secrets and secret-like spans replaced.
    pub fn text(&self, text: &str) -> String {
        redact(&self.secrets_only(text))
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

/// The stored secrets as a shared, replaceable [`Redactor`]: the secret
/// store publishes its values here whenever they change, and whoever runs
/// units or tools (the `/v1` run service, orchestration's workers) reads the
/// current redactor per run. Cheap to clone; clones share the set.
#[derive(Clone, Default)]
pub struct SecretSet(std::sync::Arc<std::sync::RwLock<std::sync::Arc<Redactor>>>);

impl SecretSet {
    pub fn new() -> SecretSet {
        SecretSet::default()
    }

    /// Replaces the values.
    pub fn replace(&self, values: impl IntoIterator<Item = String>) {
        let next = std::sync::Arc::new(Redactor::new(values));
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }

    /// The current values as a redactor.
    pub fn redactor(&self) -> std::sync::Arc<Redactor> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SecretSet")
            .field(&self.redactor().len())
            .finish()
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
    fn values_are_scrubbed_in_every_encoding() {
        use crate::encoding::*;
        let secret = "Tr0ub4dor&3 horse/battery?";
        let r = Redactor::new([secret.to_string()]);
        let b = secret.as_bytes();
        let forms = [
            secret.to_string(),
            base64_encode(b, BASE64_STD, true),
            base64_encode(b, BASE64_STD, false),
            base64_encode(b, BASE64_URL, true),
            base64_encode(b, BASE64_URL, false),
            hex_encode(b, false),
            hex_encode(b, true),
            percent_encode(b, true, false),
            percent_encode(b, false, false),
            percent_encode(b, true, true),
        ];
        for form in &forms {
            let text = format!("before {form} after");
            let out = r.text(&text);
            assert_eq!(out, format!("before {REDACTED} after"), "{form}");
            assert_eq!(r.secrets_only(&text), format!("before {REDACTED} after"));
        }
        // Inside a longer base64 stream, at every offset: `base64 file`.
        for prefix in ["", "a", "ab", "abc", "{\"k\": \""] {
            let whole = format!("{prefix}{secret}\n");
            for alphabet in [BASE64_STD, BASE64_URL] {
                let enc = base64_encode(whole.as_bytes(), alphabet, true);
                let out = r.secrets_only(&enc);
                assert!(out.contains(REDACTED), "{prefix:?}: {out}");
                // What is left is at most the characters that mix the
                // value's bits with its neighbours'.
                assert!(out.len() < enc.len(), "{out}");
            }
        }
        // Bytes too, and JSON values in place.
        let raw = format!("x{}y", hex_encode(b, false)).into_bytes();
        assert_eq!(
            r.secrets_only_bytes(&raw).unwrap(),
            format!("x{REDACTED}y").into_bytes()
        );
        assert!(r.secrets_only_bytes(b"nothing here").is_none());
        let mut v = serde_json::json!({"out": [format!("= {secret}")], "n": 1});
        r.secrets_in_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"out": [format!("= {REDACTED}")], "n": 1})
        );
        // Debug never shows a value.
        assert!(!format!("{r:?}").contains("Tr0ub"));
    }

    #[test]
    fn short_values_are_left_to_the_patterns_and_longest_wins() {
        let r = Redactor::new(["abc".to_string(), String::new()]);
        assert!(r.is_empty());
        assert_eq!(r.text("abc abcdef"), "abc abcdef");
        let r = Redactor::new(["secret-1".to_string(), "secret-1-longer".to_string()]);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.secrets_only("a secret-1-longer b secret-1 c"),
            format!("a {REDACTED} b {REDACTED} c")
        );
        // Merging keeps both sets.
        let m = Redactor::new(["first-value".to_string()]).merged(&r);
        assert_eq!(m.len(), 3);
        assert_eq!(m.secrets_only("first-value"), REDACTED);
        // A shared set is replaced for every holder.
        let set = SecretSet::new();
        let held = set.clone();
        assert!(held.redactor().is_empty());
        set.replace(["shared-value-1".to_string()]);
        assert_eq!(held.redactor().secrets_only("shared-value-1"), REDACTED);
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
