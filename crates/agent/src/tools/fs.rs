//! `fs.read`, `fs.write`, `fs.list`, `fs.edit`.

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::path_policy::{denied_prefix, shown};
use super::{ToolRuntime, io_error, parse_input};
use crate::sandbox::open_beneath;

/// Opens `abs` for reading (or writing: created, truncated) as a regular
/// file only. `O_NONBLOCK` keeps a FIFO or device from blocking the open,
/// `O_NOFOLLOW` refuses a symlink swapped in after the path check, and the
/// `fstat` of the opened file refuses anything but a regular file before a
/// byte moves: no tool thread is ever left blocked on a special file.
///
/// The open itself goes through [`open_beneath`] from the workspace root:
/// `resolve` checked a symlink-free path, so a symlink met now was swapped
/// in since (by a program of the same run) and the open is refused.
async fn open_regular(
    rt: &ToolRuntime,
    abs: &Path,
    path: &str,
    write: bool,
) -> Result<tokio::fs::File, ToolError> {
    let abs = abs.to_path_buf();
    let workspace = rt.workspace.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let root = workspace.canonicalize()?;
        let rel = abs
            .strip_prefix(&root)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EXDEV))?;
        let flags = if write {
            libc::O_WRONLY | libc::O_CREAT
        } else {
            libc::O_RDONLY
        };
        let file = open_beneath(
            &root,
            rel,
            flags | libc::O_NONBLOCK | libc::O_NOFOLLOW,
            0o666,
        )?;
        let meta = file.metadata()?;
        Ok::<_, std::io::Error>((file, meta))
    })
    .await
    .map_err(|e| ToolError::new(ToolErrorCode::InternalError, format!("open task: {e}")))?
    .map_err(|e| match e.raw_os_error() {
        // A FIFO opened for writing with no reader, or a socket.
        Some(libc::ENXIO) => invalid(path, NOT_REGULAR),
        Some(libc::EXDEV) => io_error(path, std::io::Error::from_raw_os_error(libc::ELOOP)),
        _ => io_error(path, e),
    })?;
    let (file, meta) = opened;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(invalid(path, "is a directory"));
    }
    if !kind.is_file() {
        return Err(invalid(path, NOT_REGULAR));
    }
    if write {
        // Truncated only once it is known to be a regular file.
        file.set_len(0).map_err(|e| io_error(path, e))?;
    }
    Ok(tokio::fs::File::from_std(file))
}

const NOT_REGULAR: &str = "is not a regular file (a FIFO, socket or device)";

fn invalid(path: &str, what: &str) -> ToolError {
    let path = shown(path);
    ToolError::new(ToolErrorCode::ToolInputInvalid, format!("{path} {what}"))
        .with_detail("path", path)
}

/// Most entries `fs.list` returns.
const MAX_LIST_ENTRIES: usize = 1000;

#[derive(Deserialize)]
struct PathInput {
    path: String,
}

#[derive(Deserialize)]
struct ListInput {
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct WriteInput {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditInput {
    path: String,
    old: String,
    new: String,
}

/// `{path}` → `{path, content, bytes}` (plus `truncated: true` past the output cap).
pub(super) async fn read(rt: &ToolRuntime, input: &Value) -> Result<Value, ToolError> {
    let PathInput { path } = parse_input(input)?;
    let abs = rt.resolve(&path)?;
    let file = open_regular(rt, &abs, &path, false).await?;
    let meta = file.metadata().await.map_err(|e| io_error(&path, e))?;
    let cap = rt.limits.output_cap_bytes;
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| io_error(&path, e))?;
    let truncated = bytes.len() > cap;
    bytes.truncate(cap);
    let content = match String::from_utf8(bytes) {
        Ok(s) => s,
        // The cap may split a multi-byte character: keep the whole ones.
        Err(e) if truncated && e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
        Err(_) => return Err(invalid(&path, "is not UTF-8 text")),
    };
    let mut out = json!({"path": path, "content": content, "bytes": meta.len()});
    if truncated {
        out["truncated"] = json!(true);
    }
    Ok(out)
}

/// `{path, content}` → `{path, bytes}`; creates parent directories.
pub(super) async fn write(rt: &ToolRuntime, input: &Value) -> Result<Value, ToolError> {
    let WriteInput { path, content } = parse_input(input)?;
    let abs = rt.resolve(&path)?;
    if let Some(parent) = abs.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error(&path, e))?;
    }
    let mut file = open_regular(rt, &abs, &path, true).await?;
    file.write_all(content.as_bytes())
        .await
        .map_err(|e| io_error(&path, e))?;
    file.flush().await.map_err(|e| io_error(&path, e))?;
    Ok(json!({"path": path, "bytes": content.len()}))
}

/// `{path?}` → `{path, entries: [{name, kind, bytes}]}`, sorted by name, deny-listed
/// entries hidden.
pub(super) async fn list(rt: &ToolRuntime, input: &Value) -> Result<Value, ToolError> {
    let ListInput { path } = parse_input(input)?;
    let path = path.unwrap_or_else(|| ".".to_string());
    let abs = rt.resolve(&path)?;
    let rel_dir = rt.relative(&abs).unwrap_or_default();
    let mut dir = tokio::fs::read_dir(&abs)
        .await
        .map_err(|e| io_error(&path, e))?;
    let mut entries = Vec::new();
    let mut truncated = false;
    while let Some(entry) = dir.next_entry().await.map_err(|e| io_error(&path, e))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if denied_prefix(&rel_dir.join(&name), &rt.deny).is_some() {
            continue;
        }
        if entries.len() == MAX_LIST_ENTRIES {
            truncated = true;
            break;
        }
        let Ok(kind) = entry.file_type().await else {
            continue;
        };
        let (kind, bytes) = if kind.is_symlink() {
            ("symlink", 0)
        } else if kind.is_dir() {
            ("dir", 0)
        } else {
            let len = entry.metadata().await.map(|m| m.len()).unwrap_or(0);
            ("file", len)
        };
        entries.push(json!({"name": name, "kind": kind, "bytes": bytes}));
    }
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut out = json!({"path": path, "entries": entries});
    if truncated {
        out["truncated"] = json!(true);
    }
    Ok(out)
}

/// `{path, old, new}` → `{path, replacements: 1}`; `old` must occur exactly once.
pub(super) async fn edit(rt: &ToolRuntime, input: &Value) -> Result<Value, ToolError> {
    let EditInput { path, old, new } = parse_input(input)?;
    let show = shown(&path);
    let bad = |msg: String| {
        ToolError::new(ToolErrorCode::ToolInputInvalid, msg).with_detail("path", show.as_str())
    };
    if old.is_empty() {
        return Err(bad("`old` must not be empty".into()));
    }
    let abs = rt.resolve(&path)?;
    let mut bytes = Vec::new();
    open_regular(rt, &abs, &path, false)
        .await?
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| io_error(&path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(&path, "is not UTF-8 text"))?;
    let occurrences = text.matches(old.as_str()).count();
    if occurrences != 1 {
        return Err(bad(format!(
            "`old` occurs {occurrences} times in {show}; it must occur exactly once (include more surrounding text)"
        ))
        .with_detail("occurrences", occurrences));
    }
    let edited = text.replacen(old.as_str(), &new, 1);
    let mut file = open_regular(rt, &abs, &path, true).await?;
    file.write_all(edited.as_bytes())
        .await
        .map_err(|e| io_error(&path, e))?;
    file.flush().await.map_err(|e| io_error(&path, e))?;
    Ok(json!({"path": path, "replacements": 1}))
}
