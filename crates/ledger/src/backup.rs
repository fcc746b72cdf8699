//! Backup and restore of a whole ledger as checksummed JSONL, between any two
//! backends (SQLite → PostgreSQL included).
//!
//! Every line is `{"sha256":"<hex>",<body>}` where the hex digest covers the
//! body's exact bytes, so a flipped byte is caught on the line it sits on
//! without re-serialising anything. Bodies are `"kind":K,"data":D` with K one
//! of `header`, `event`, `dead_letter`, `end`. The `end` line counts the lines
//! before it and digests their checksums in order, so a truncated, reordered
//! or spliced file is refused as a whole.
//!
//! Import verifies the entire file before it writes anything, and only into an
//! empty ledger. Events are re-appended with their original ids, times and
//! stream versions (as compare-and-append), so the target's projections are
//! computed by the same code path that built the source's.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::LedgerError;
use crate::event::{NewEvent, Query, Record};
use crate::store::Ledger;

/// The `format` named in an export's header line.
pub const FORMAT: &str = "garrison-ledger-export";
/// The header's `version`; an import refuses any other.
pub const VERSION: u64 = 1;

/// Events read and appended per round trip.
const PAGE: usize = 1000;
const PREFIX: &str = "{\"sha256\":\"";
const DIGEST_HEX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not an intact export; nothing was written.
    #[error("line {line}: {reason}")]
    Corrupt { line: usize, reason: String },
    #[error(
        "the target ledger is not empty ({events} events, {mailboxes} dead-letter mailboxes); \
         import restores into an empty ledger only"
    )]
    NotEmpty { events: i64, mailboxes: usize },
}

/// What an export wrote or an import restored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupStats {
    pub events: u64,
    pub dead_letters: u64,
    /// Sequence number of the last event.
    pub head: i64,
}

/// Writes every event (in sequence order) and every dead-letter entry of
/// `ledger` to `out`. `on_progress` sees the running event count.
pub async fn export(
    ledger: &dyn Ledger,
    out: &mut dyn Write,
    mut on_progress: impl FnMut(u64),
) -> Result<BackupStats, BackupError> {
    let head = ledger.head().await?;
    let mut w = LineWriter::new(out);
    w.line(
        "header",
        &json!({
            "format": FORMAT,
            "version": VERSION,
            "source_backend": ledger.backend(),
            "head": head,
        }),
    )?;
    let mut stats = BackupStats::default();
    let mut after = 0;
    // Only what was committed when the export started: a live ledger keeps
    // growing, and the header promised `head`.
    while after < head {
        let page = ledger
            .read(&Query {
                after_seq: Some(after),
                limit: Some(PAGE as i64),
                ..Query::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in page.iter().filter(|r| r.seq <= head) {
            w.line("event", &serde_json::to_value(record).map_err(io_err)?)?;
            stats.events += 1;
            stats.head = record.seq;
        }
        on_progress(stats.events);
    }
    for mailbox in ledger.dead_letter_mailboxes().await? {
        // Oldest first, so an import that pushes them in file order keeps
        // the newest-first reading order.
        let mut entries = ledger.dead_letters(&mailbox, usize::MAX).await?;
        entries.reverse();
        for entry in entries {
            w.line("dead_letter", &json!({"mailbox": mailbox, "entry": entry}))?;
            stats.dead_letters += 1;
        }
    }
    let count = w.count;
    let digest = w.digest();
    w.line(
        "end",
        &json!({
            "lines": count,
            "events": stats.events,
            "dead_letters": stats.dead_letters,
            "digest": digest,
        }),
    )?;
    w.out.flush()?;
    Ok(stats)
}

/// Restores an export into `ledger`, which must be empty. `open` re-opens
/// the file: it is read twice, once to verify it whole, once to write.
pub async fn import<R: BufRead>(
    ledger: &dyn Ledger,
    mut open: impl FnMut() -> std::io::Result<R>,
    mut on_progress: impl FnMut(u64),
) -> Result<BackupStats, BackupError> {
    let expected = verify(open()?)?;
    let events = ledger.head().await?;
    let mailboxes = ledger.dead_letter_mailboxes().await?.len();
    if events > 0 || mailboxes > 0 {
        return Err(BackupError::NotEmpty { events, mailboxes });
    }
    let mut stats = BackupStats::default();
    let mut batch: Vec<NewEvent> = Vec::with_capacity(PAGE);
    let mut letters: Vec<(String, Value)> = Vec::new();
    for (i, line) in open()?.lines().enumerate() {
        let (kind, data) = parse_line(&line?, i + 1)?;
        match kind.as_str() {
            "event" => {
                let record: Record =
                    serde_json::from_value(data).map_err(|e| corrupt(i + 1, e.to_string()))?;
                stats.head = record.seq;
                batch.push(replay(record));
                if batch.len() == PAGE {
                    stats.events += append(ledger, &mut batch).await?;
                    on_progress(stats.events);
                }
            }
            "dead_letter" => {
                let mailbox = data["mailbox"].as_str().unwrap_or_default().to_string();
                letters.push((mailbox, data["entry"].clone()));
            }
            _ => {}
        }
    }
    stats.events += append(ledger, &mut batch).await?;
    on_progress(stats.events);
    for (mailbox, entry) in letters {
        ledger.push_dead_letter(&mailbox, entry, usize::MAX).await?;
        stats.dead_letters += 1;
    }
    if stats != expected {
        return Err(BackupError::Ledger(LedgerError::Storage(format!(
            "restored {stats:?} but the export holds {expected:?}"
        ))));
    }
    Ok(stats)
}

/// Checks every line's checksum, the line kinds and order, and the closing
/// count and digest; returns what the file holds.
pub fn verify(reader: impl BufRead) -> Result<BackupStats, BackupError> {
    let mut digest = Sha256::new();
    let mut stats = BackupStats::default();
    let mut lines = 0u64;
    let mut ended = false;
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line?;
        if ended {
            return Err(corrupt(n, "content after the `end` line".into()));
        }
        let sum = checksum_of(&line, n)?.to_string();
        let (kind, data) = parse_line(&line, n)?;
        match (n, kind.as_str()) {
            (1, "header") => {
                if data["format"] != FORMAT {
                    return Err(corrupt(n, format!("not a {FORMAT} file")));
                }
                if data["version"] != VERSION {
                    return Err(corrupt(
                        n,
                        format!(
                            "unsupported version {} (this build reads {VERSION})",
                            data["version"]
                        ),
                    ));
                }
            }
            (1, _) => return Err(corrupt(n, "the first line must be the header".into())),
            (_, "header") => return Err(corrupt(n, "a second header".into())),
            (_, "event") => {
                let seq = data["seq"].as_i64().unwrap_or(0);
                if stats.dead_letters > 0 || seq <= stats.head {
                    return Err(corrupt(n, "events out of sequence order".into()));
                }
                stats.head = seq;
                stats.events += 1;
            }
            (_, "dead_letter") => stats.dead_letters += 1,
            (_, "end") => {
                let want = (data["lines"].as_u64(), data["digest"].as_str());
                let hex = garrison_contracts::signature::hex(&digest.clone().finalize());
                if want != (Some(lines), Some(hex.as_str()))
                    || data["events"].as_u64() != Some(stats.events)
                    || data["dead_letters"].as_u64() != Some(stats.dead_letters)
                {
                    return Err(corrupt(
                        n,
                        "the closing counts or digest do not match the lines before it".into(),
                    ));
                }
                ended = true;
            }
            (_, other) => return Err(corrupt(n, format!("unknown line kind `{other}`"))),
        }
        digest.update(sum.as_bytes());
        lines += 1;
    }
    if !ended {
        return Err(corrupt(
            lines as usize + 1,
            "the file ends without its `end` line (truncated?)".into(),
        ));
    }
    Ok(stats)
}

/// The original event as an append: same id, time, stream and version.
fn replay(r: Record) -> NewEvent {
    NewEvent {
        event_id: Some(r.event_id),
        ts: Some(r.ts),
        event_type: r.event_type,
        garrison_id: r.garrison_id,
        theater_id: r.theater_id,
        run_id: r.run_id,
        order_id: r.order_id,
        unit_id: r.unit_id,
        payload: r.payload,
        stream: Some(r.stream),
        expected_version: Some(r.stream_version - 1),
    }
}

async fn append(ledger: &dyn Ledger, batch: &mut Vec<NewEvent>) -> Result<u64, BackupError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let done = ledger.append_batch(std::mem::take(batch)).await?;
    Ok(done.len() as u64)
}

/// The digest a line claims, after checking it against the body's bytes.
fn checksum_of(line: &str, n: usize) -> Result<&str, BackupError> {
    let body_start = PREFIX.len() + DIGEST_HEX + 2;
    let framed = line.len() > body_start
        && line.starts_with(PREFIX)
        && line.get(PREFIX.len() + DIGEST_HEX..body_start) == Some("\",")
        && line.ends_with('}');
    let (Some(claimed), Some(body)) = (
        line.get(PREFIX.len()..PREFIX.len() + DIGEST_HEX),
        line.get(body_start..line.len() - 1),
    ) else {
        return Err(corrupt(n, "not an export line".into()));
    };
    if !framed {
        return Err(corrupt(n, "not an export line".into()));
    }
    if garrison_contracts::signature::hex(&Sha256::digest(body.as_bytes())) != claimed {
        return Err(corrupt(n, "checksum mismatch".into()));
    }
    Ok(claimed)
}

fn parse_line(line: &str, n: usize) -> Result<(String, Value), BackupError> {
    let mut v: Value = serde_json::from_str(line).map_err(|e| corrupt(n, e.to_string()))?;
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    Ok((kind, v["data"].take()))
}

fn corrupt(line: usize, reason: String) -> BackupError {
    BackupError::Corrupt { line, reason }
}

fn io_err(e: serde_json::Error) -> BackupError {
    BackupError::Io(std::io::Error::other(e))
}

/// Writes framed lines and keeps the running digest of their checksums.
struct LineWriter<'a> {
    out: &'a mut dyn Write,
    digest: Sha256,
    count: u64,
}

impl<'a> LineWriter<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        LineWriter {
            out,
            digest: Sha256::new(),
            count: 0,
        }
    }

    fn line(&mut self, kind: &str, data: &Value) -> Result<(), BackupError> {
        let body = format!("\"kind\":{},\"data\":{data}", Value::from(kind));
        let sum = garrison_contracts::signature::hex(&Sha256::digest(body.as_bytes()));
        writeln!(self.out, "{PREFIX}{sum}\",{body}}}")?;
        self.digest.update(sum.as_bytes());
        self.count += 1;
        Ok(())
    }

    fn digest(&self) -> String {
        garrison_contracts::signature::hex(&self.digest.clone().finalize())
    }
}
