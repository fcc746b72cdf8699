//! Theater registry: which git repository each theater id stands for.
//!
//! A theater's default repo is `<data-dir>/theaters/<id>/repo`; one opened
//! with an explicit `repo_path` (`POST /theaters`, `garrison run --repo`) is
//! remembered in `<data-dir>/theaters/<id>/theater.json` so every later
//! order of that theater lands in the same repository. Worktrees always live
//! under `<data-dir>/theaters/<id>/worktrees`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use garrison_vault::Theater;
use serde::{Deserialize, Serialize};

use super::error::{OrchestrationError, Result};

#[derive(Debug, Serialize, Deserialize)]
struct TheaterFile {
    theater_id: String,
    repo_path: PathBuf,
}

/// Opened theaters by id.
#[derive(Debug)]
pub struct Theaters {
    root: PathBuf,
    open: Mutex<HashMap<String, Theater>>,
}

impl Theaters {
    pub fn new(data_dir: &Path) -> Self {
        Theaters {
            root: data_dir.join("theaters"),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn dir(&self, theater_id: &str) -> PathBuf {
        self.root.join(theater_id)
    }

    /// Opens (creating when needed) theater `theater_id`. With `repo_path`
    /// the theater is bound to that repository; a theater already bound to
    /// a different one is refused rather than silently moved.
    pub async fn open(&self, theater_id: &str, repo_path: Option<&Path>) -> Result<Theater> {
        // Checked before the id becomes part of any path.
        garrison_vault::validate_id(theater_id)?;
        if let Some(t) = self.cached(theater_id)
            && repo_path.is_none_or(|p| same_path(p, &t.repo))
        {
            return Ok(t);
        }
        let dir = self.dir(theater_id);
        let id = theater_id.to_string();
        let wanted = repo_path.map(Path::to_path_buf);
        let theater = tokio::task::spawn_blocking(move || open_blocking(&id, &dir, wanted))
            .await
            .map_err(|e| OrchestrationError::Internal(format!("theater open task: {e}")))??;
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(theater_id.to_string(), theater.clone());
        Ok(theater)
    }

    fn cached(&self, theater_id: &str) -> Option<Theater> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(theater_id)
            .cloned()
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn open_blocking(theater_id: &str, dir: &Path, wanted: Option<PathBuf>) -> Result<Theater> {
    let file = dir.join("theater.json");
    let recorded: Option<TheaterFile> = match std::fs::read(&file) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            OrchestrationError::Internal(format!("{} is corrupt: {e}", file.display()))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(OrchestrationError::Internal(format!(
                "{}: {e}",
                file.display()
            )));
        }
    };
    let repo = match (&recorded, wanted) {
        (Some(r), Some(w)) if !same_path(&r.repo_path, &w) => {
            return Err(OrchestrationError::Conflict(format!(
                "theater `{theater_id}` is bound to {}; choose another theater id for {}",
                r.repo_path.display(),
                w.display()
            )));
        }
        (Some(r), _) => r.repo_path.clone(),
        (None, Some(w)) => absolute(&w)?,
        (None, None) => dir.join("repo"),
    };
    let theater = Theater::open(theater_id, &repo, &dir.join("worktrees"))?;
    hide_data_dir(&theater.repo, dir);
    if recorded.is_none() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OrchestrationError::Internal(format!("{}: {e}", dir.display())))?;
        let doc = TheaterFile {
            theater_id: theater_id.to_string(),
            repo_path: theater.repo.clone(),
        };
        garrison_files::write_json(&file, &doc, garrison_files::SHARED)
            .map_err(|e| OrchestrationError::Internal(format!("{}: {e}", file.display())))?;
    }
    Ok(theater)
}

/// When the data dir lives inside the theater repo (`garrison run --repo .`
/// with the default `./.garrison`), keep its files out of the user's
/// `git status` — all but `orders/`, where promoted order records land when
/// the data dir is the repo's own `.garrison`.
fn hide_data_dir(repo: &Path, theater_dir: &Path) {
    let (Ok(repo), Some(data_dir)) = (
        repo.canonicalize(),
        theater_dir.parent().and_then(Path::parent),
    ) else {
        return;
    };
    let Ok(data_dir) = data_dir.canonicalize() else {
        return;
    };
    let Ok(rel) = data_dir.strip_prefix(&repo) else {
        return;
    };
    let rel = rel.to_string_lossy().replace('\\', "/");
    if rel.is_empty() {
        return;
    }
    let info = repo.join(".git").join("info");
    if !info.is_dir() {
        return;
    }
    let exclude = info.join("exclude");
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    let lines = [format!("/{rel}/*"), format!("!/{rel}/orders/")];
    if lines.iter().all(|l| current.lines().any(|c| c == l)) {
        return;
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# Garrison's data dir\n");
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    if let Err(e) = std::fs::write(&exclude, text) {
        tracing::warn!(error = %e, "cannot hide the data dir from git status");
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(p))
        .map_err(|e| OrchestrationError::Internal(format!("current directory: {e}")))
}
