//! `fs.read`, `fs.write`, `fs.list`, `fs.edit`.

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::path_policy::denied_prefix;
use super::{ToolRuntime, io_error, parse_input};

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
    let file = tokio::fs::File::open(&abs)
        .await
        .map_err(|e| io_error(&path, e))?;
    let meta = file.metadata().await.map_err(|e| io_error(&path, e))?;
    if meta.is_dir() {
        return Err(ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            format!("{path} is a directory"),
        )
        .with_detail("path", path.as_str()));
    }
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
        Err(_) => {
            return Err(ToolError::new(
                ToolErrorCode::ToolInputInvalid,
                format!("{path} is not UTF-8 text"),
            )
            .with_detail("path", path.as_str()));
        }
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
    tokio::fs::write(&abs, content.as_bytes())
        .await
        .map_err(|e| io_error(&path, e))?;
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
    let invalid = |msg: String| {
        ToolError::new(ToolErrorCode::ToolInputInvalid, msg).with_detail("path", path.as_str())
    };
    if old.is_empty() {
        return Err(invalid("`old` must not be empty".into()));
    }
    let abs = rt.resolve(&path)?;
    let bytes = tokio::fs::read(&abs)
        .await
        .map_err(|e| io_error(&path, e))?;
    let text =
        String::from_utf8(bytes).map_err(|_| invalid(format!("{path} is not UTF-8 text")))?;
    let occurrences = text.matches(old.as_str()).count();
    if occurrences != 1 {
        return Err(invalid(format!(
            "`old` occurs {occurrences} times in {path}; it must occur exactly once (include more surrounding text)"
        ))
        .with_detail("occurrences", occurrences));
    }
    let edited = text.replacen(old.as_str(), &new, 1);
    tokio::fs::write(&abs, edited.as_bytes())
        .await
        .map_err(|e| io_error(&path, e))?;
    Ok(json!({"path": path, "replacements": 1}))
}
