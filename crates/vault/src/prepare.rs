//! Writing the operational files an order starts with.

use std::fs;
use std::io;
use std::path::Path;

use crate::atomic::write_atomic;
use crate::error::{Result, VaultError, io_at};

/// The files `prepare` writes at the worktree root.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareFiles {
    pub order_json: serde_json::Value,
    pub task_md: String,
    pub state_json: serde_json::Value,
    pub assignment: Option<serde_json::Value>,
}

/// Writes order.json, task.md, state.json and (when given) assignment.json into the worktree,
/// each atomically (temp file + rename), pretty-printed JSON with a trailing newline.
/// The worktree directory must exist; an assignment.json from an earlier call is kept when
/// none is given.
pub fn prepare(worktree: &Path, files: &PrepareFiles) -> Result<()> {
    let meta = fs::metadata(worktree).map_err(io_at("reading", worktree))?;
    if !meta.is_dir() {
        let e = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
        return Err(io_at("preparing", worktree)(e));
    }
    write_atomic(&worktree.join("order.json"), &json(&files.order_json)?)?;
    write_atomic(&worktree.join("task.md"), files.task_md.as_bytes())?;
    write_atomic(&worktree.join("state.json"), &json(&files.state_json)?)?;
    if let Some(assignment) = &files.assignment {
        write_atomic(&worktree.join("assignment.json"), &json(assignment)?)?;
    }
    Ok(())
}

fn json(value: &serde_json::Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| VaultError::Io(e.into()))?;
    bytes.push(b'\n');
    Ok(bytes)
}
