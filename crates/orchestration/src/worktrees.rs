//! The vault's worktree operations as the `/worktrees` routes ask for them:
//! each is the git step followed by the ledger event that records it, the
//! same sequence a claim follows.

use garrison_contracts::ironclaw::{EventType, NewEvent, OrderFile};
pub use garrison_vault::{Archived, Worktree};
use garrison_vault::{PrepareFiles, Theater, VaultError};
use serde_json::{Value, json};

use super::error::{OrchestrationError, Result};
use super::{Orchestrator, prompt};

/// The files `prepare` writes into a worktree.
pub const PREPARED_FILES: [&str; 3] = ["order.json", "task.md", "state.json"];

impl Orchestrator {
    /// Creates an order's worktree in `theater_id` on `branch` and records
    /// `WORKTREE_CREATED` and `WORKTREE_READY`.
    pub async fn create_worktree(
        &self,
        theater_id: &str,
        order_id: &str,
        branch: &str,
    ) -> Result<Worktree> {
        let theater = self.theaters.open(theater_id, None).await?;
        let (id, br) = (order_id.to_string(), branch.to_string());
        let wt = blocking(move || theater.create_worktree(&id, &br)).await?;
        let payload = json!({
            "worktree_path": wt.path.display().to_string(),
            "branch": wt.branch,
            "base_sha": wt.base_sha,
        });
        self.record_vault_events(
            theater_id,
            order_id,
            vec![
                (EventType::WorktreeCreated, payload.clone()),
                (EventType::WorktreeReady, payload),
            ],
        )
        .await?;
        Ok(wt)
    }

    /// Writes `order.json`, `task.md` and `state.json` into the order's
    /// worktree. `task.md` is the brief a claim writes, built from the
    /// order's spec when the ledger has it. Returns the worktree.
    pub async fn prepare_worktree_files(&self, order: &OrderFile) -> Result<Worktree> {
        order
            .validate()
            .map_err(|e| OrchestrationError::invalid("SCHEMA_INVALID", e.to_string()))?;
        let order_id = order.order_id.clone();
        let theater = self
            .theater_of(&order_id, Some(order.theater_id.clone()))
            .await?;
        let spec = self.order_spec(&order_id).await?;
        let files = PrepareFiles {
            order_json: serde_json::to_value(order)
                .map_err(|e| OrchestrationError::Internal(e.to_string()))?,
            task_md: prompt::task_md(order, &prompt::unit_prompt(order, &spec)),
            state_json: json!({"order_id": order_id, "run_id": order.run_id, "status": "PREPARED"}),
            assignment: None,
        };
        blocking(move || {
            let wt = theater.worktree(&order_id)?;
            garrison_vault::prepare(&wt.path, &files)?;
            Ok(wt)
        })
        .await
    }

    /// Tags the order's worktree head and records `WORKTREE_ARCHIVED`.
    pub async fn archive_worktree(
        &self,
        order_id: &str,
        theater_id: Option<String>,
    ) -> Result<Archived> {
        let theater = self.theater_of(order_id, theater_id).await?;
        let tid = theater.theater_id.clone();
        let id = order_id.to_string();
        let archived = blocking(move || theater.archive(&id)).await?;
        let payload = json!({"tag": archived.tag, "commit_sha": archived.commit_sha});
        self.record_vault_events(&tid, order_id, vec![(EventType::WorktreeArchived, payload)])
            .await?;
        Ok(archived)
    }

    /// Removes the order's worktree (refused with uncommitted changes unless
    /// `force`) and records `WORKTREE_REMOVED`.
    pub async fn remove_order_worktree(
        &self,
        order_id: &str,
        theater_id: Option<String>,
        force: bool,
    ) -> Result<()> {
        let theater = self.theater_of(order_id, theater_id).await?;
        let tid = theater.theater_id.clone();
        let id = order_id.to_string();
        blocking(move || theater.remove_worktree(&id, force)).await?;
        self.record_vault_events(
            &tid,
            order_id,
            vec![(EventType::WorktreeRemoved, json!({"force": force}))],
        )
        .await
    }

    /// The theater of an order: the ledger's, else the one given, else the default.
    async fn theater_of(&self, order_id: &str, given: Option<String>) -> Result<Theater> {
        let known = self
            .ledger
            .order_snapshot(order_id)
            .await?
            .and_then(|s| s.theater_id);
        let id = known
            .or(given)
            .unwrap_or_else(|| self.settings.default_theater.clone());
        self.theaters.open(&id, None).await
    }

    /// Appends vault events for an order, carrying its run when the ledger knows it.
    async fn record_vault_events(
        &self,
        theater_id: &str,
        order_id: &str,
        events: Vec<(EventType, Value)>,
    ) -> Result<()> {
        let run_id = self
            .ledger
            .order_snapshot(order_id)
            .await?
            .and_then(|s| s.run_id);
        let batch = events
            .into_iter()
            .map(|(t, payload)| {
                let mut e = NewEvent::new(t)
                    .theater(theater_id)
                    .order(order_id)
                    .payload(payload);
                e.garrison_id = self.settings.garrison_id.clone();
                e.run_id = run_id.clone();
                e
            })
            .collect();
        self.ledger.append_batch(batch).await?;
        Ok(())
    }
}

/// Runs a git step off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, VaultError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OrchestrationError::Internal(format!("vault task: {e}")))?
        .map_err(OrchestrationError::from)
}
