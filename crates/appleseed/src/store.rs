//! The state dir's files: JSONL ledgers with crash-safe appends, and report
//! files written atomically.
//!
//! An append writes all of its lines in one buffer, then fsyncs, so a crash
//! can only leave a torn *last* line. Reading skips such a fragment with a
//! warning; the next append cuts it off first so no record is glued onto it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Error;

pub const EVENTS_FILE: &str = "events.jsonl";
pub const ENVELOPES_FILE: &str = "runtime_event_envelopes.jsonl";
pub const PROJECTED_FILE: &str = "projected_feedback.jsonl";
pub const REPORTS_DIR: &str = "reports";
const LOCK_FILE: &str = ".appleseed.lock";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Records read from one JSONL file, plus what had to be skipped.
#[derive(Debug, Default)]
pub struct Lines {
    pub records: Vec<Value>,
    pub warnings: Vec<String>,
}

/// The files of one state dir.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Held while a command reads-then-appends, so two processes cannot both
/// decide an envelope is new. Released on drop.
pub struct StoreLock {
    _file: File,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn envelopes_path(&self) -> PathBuf {
        self.dir.join(ENVELOPES_FILE)
    }

    pub fn projected_path(&self) -> PathBuf {
        self.dir.join(PROJECTED_FILE)
    }

    pub fn reports_dir(&self) -> PathBuf {
        self.dir.join(REPORTS_DIR)
    }

    /// Creates the state dir and takes the writer lock.
    pub fn lock(&self) -> Result<StoreLock, Error> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(StoreLock { _file: file })
    }

    /// Every complete record of a JSONL file (missing file: none).
    pub fn read_lines(&self, path: &Path) -> Result<Lines, Error> {
        let mut records = Vec::new();
        let (_, warnings) = self.read_since(path, Position::default(), |_, v| records.push(v))?;
        Ok(Lines { records, warnings })
    }

    /// The records appended to `path` since `from` (a position an earlier
    /// read returned), each with its span, and the position after the last
    /// complete one. The caller checks the file is still the one `from`
    /// was read from ([`FileId`]).
    pub(crate) fn read_since(
        &self,
        path: &Path,
        from: Position,
        each: impl FnMut(Span, Value),
    ) -> Result<(Position, Vec<String>), Error> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(from.offset)).map_err(io(path))?;
                f.read_to_end(&mut bytes).map_err(io(path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((from, Vec::new())),
            Err(e) => return Err(io(path)(e)),
        }
        parse_lines(path, &bytes, from, each)
    }

    /// The record stored at `span` of `path`.
    pub(crate) fn read_span(&self, path: &Path, span: Span) -> Result<Value, Error> {
        let mut f = File::open(path).map_err(io(path))?;
        f.seek(SeekFrom::Start(span.offset)).map_err(io(path))?;
        let mut line = vec![0; span.len];
        f.read_exact(&mut line).map_err(io(path))?;
        serde_json::from_slice(&line).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            line: span.line,
            reason: e.to_string(),
        })
    }

    /// Appends `records` as JSON lines with one write and an fsync.
    pub fn append(&self, path: &Path, records: &[Value]) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e.into(),
            })?;
            buf.push(b'\n');
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io(path))?;
        if existed && let Some((start, tail)) = unterminated_tail(&mut file).map_err(io(path))? {
            if serde_json::from_slice::<Value>(&tail).is_ok_and(|v| v.is_object()) {
                // A whole record that only lost its newline: keep it.
                buf.insert(0, b'\n');
            } else {
                // A torn fragment from a crash: it was never acknowledged.
                file.set_len(start).map_err(io(path))?;
            }
        }
        file.write_all(&buf).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        if !existed {
            let dir = path.parent().unwrap_or(Path::new("."));
            garrison_files::sync_dir(dir).map_err(io(dir))?;
        }
        Ok(())
    }

    /// Writes pretty JSON (with a final newline) via temp file + rename.
    pub fn write_json(&self, path: &Path, v: &Value) -> Result<(), Error> {
        let mut text = serde_json::to_string_pretty(v).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        text.push('\n');
        self.write_text(path, &text)
    }

    /// Writes text via a temp file in the same dir, fsync, rename, dir fsync:
    /// readers see the old file or the new one, never half of one.
    pub fn write_text(&self, path: &Path, text: &str) -> Result<(), Error> {
        garrison_files::write_atomic(path, text.as_bytes(), garrison_files::SHARED)
            .map_err(io(path))
    }
}

/// Where reading a JSONL file stopped: a byte offset at a line start, and
/// how many lines lie before it (for error messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub offset: u64,
    pub line: usize,
}

/// Where one record's line sits in its file (without the newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub offset: u64,
    pub len: usize,
    /// 1-based line number.
    pub line: usize,
}

/// Which file a path named when it was read: an index built from one file
/// must not be applied to another that replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The file at `path` and its length (none when it does not exist).
    pub(crate) fn of(path: &Path) -> Result<Option<(FileId, u64)>, Error> {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(path) {
            Ok(m) => Ok(Some((
                FileId {
                    dev: m.dev(),
                    ino: m.ino(),
                },
                m.len(),
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    }
}

/// Parses `bytes`, the part of a JSONL file that starts at `from`: calls
/// `each` for every record, skips blank lines, and leaves out a torn last
/// line (no newline, not a JSON object) with a warning. A bad line that is
/// not last is corruption. Returns the position after the last line that
/// ends in a newline: a line without one may still be completed or cut off
/// by the next append, so a later read starts again at its beginning.
fn parse_lines(
    path: &Path,
    bytes: &[u8],
    from: Position,
    mut each: impl FnMut(Span, Value),
) -> Result<(Position, Vec<String>), Error> {
    let mut warnings = Vec::new();
    let mut at = from;
    let mut rest = bytes;
    while !rest.is_empty() {
        let line_no = at.line + 1;
        let (line, terminated, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &[][..]),
        };
        let span = Span {
            offset: at.offset,
            len: line.len(),
            line: line_no,
        };
        let used = Position {
            offset: at.offset + line.len() as u64 + 1,
            line: line_no,
        };
        rest = next;
        if terminated {
            at = used;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) => each(span, v),
            _ if !terminated => warnings.push(format!(
                "{}: ignoring a torn last line ({} bytes, line {line_no}) left by an interrupted write",
                path.display(),
                line.len()
            )),
            Ok(_) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason: "not a JSON object".into(),
                });
            }
            Err(e) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok((at, warnings))
}

/// The start and bytes of the file's last line when it lacks its newline
/// (none for an empty file or one that ends in a newline). Reads backwards
/// from the end, so an append costs the same however long the file is.
fn unterminated_tail(file: &mut File) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    const CHUNK: u64 = 8 * 1024;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    while start > 0 {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        if start == len && chunk.last() == Some(&b'\n') {
            return Ok(None);
        }
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                chunk.drain(..=i);
                chunk.extend_from_slice(&tail);
                return Ok(Some((from + i as u64 + 1, chunk)));
            }
            None => {
                chunk.extend_from_slice(&tail);
                tail = chunk;
                start = from;
            }
        }
    }
    Ok((len > 0).then_some((0, tail)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn torn_tail_is_skipped_then_cut() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let p = store.envelopes_path();
        store.append(&p, &[json!({"a": 1})]).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"a\": 2, \"b").unwrap();
        let lines = store.read_lines(&p).unwrap();
        assert_eq!(lines.records, vec![json!({"a": 1})]);
        assert_eq!(lines.warnings.len(), 1);
        store.append(&p, &[json!({"a": 3})]).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"a\":1}\n{\"a\":3}\n");
        // A whole record without its newline is kept.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"a\":4}").unwrap();
        store.append(&p, &[json!({"a": 5})]).unwrap();
        assert_eq!(store.read_lines(&p).unwrap().records.len(), 4);
        // A broken line in the middle is corruption, not a torn tail.
        fs::write(&p, "{\"a\":1}\n{oops\n{\"a\":2}\n").unwrap();
        assert!(matches!(
            store.read_lines(&p),
            Err(Error::Corrupt { line: 2, .. })
        ));
    }

    #[test]
    fn a_later_read_starts_at_a_line_that_had_no_newline() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let p = store.envelopes_path();
        let read = |from| {
            let mut got = Vec::new();
            let (at, _) = store
                .read_since(&p, from, |span, v| got.push((span.line, v)))
                .unwrap();
            (at, got)
        };
        // A whole record without its newline: seen, but not passed.
        fs::write(&p, "{\"a\":1}\n{\"a\":2}").unwrap();
        let (at, got) = read(Position::default());
        assert_eq!(got.len(), 2);
        assert_eq!(at, Position { offset: 8, line: 1 });
        store.append(&p, &[json!({"a": 3})]).unwrap();
        let (_, got) = read(at);
        assert_eq!(got, vec![(2, json!({"a": 2})), (3, json!({"a": 3}))]);
        // Trailing blanks without a newline are cut by the next append, so
        // the position must not lie past them either.
        fs::write(&p, "{\"a\":1}\n   ").unwrap();
        let (at, _) = read(Position::default());
        assert_eq!(at, Position { offset: 8, line: 1 });
        store.append(&p, &[json!({"a": 4})]).unwrap();
        let (_, got) = read(at);
        assert_eq!(got, vec![(2, json!({"a": 4}))]);
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let p = store.reports_dir().join("x.json");
        store.write_json(&p, &json!({"v": 1})).unwrap();
        store.write_json(&p, &json!({"v": 2})).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\n  \"v\": 2\n}\n");
        assert_eq!(fs::read_dir(store.reports_dir()).unwrap().count(), 1);
    }
}
