//! What `garrison run` and `garrison demo` print at the end: the reply, where
//! the work is, and one JSON summary line (always the last line of stdout).

use garrison_contracts::ironclaw::EventType;
use garrison_ledger::RunSnapshot;
use garrison_orchestration::Orchestrator;
use serde_json::{Value, json};

/// The summary document for a run.
pub async fn summary(orch: &Orchestrator, run: &RunSnapshot) -> anyhow::Result<Value> {
    let orders = orch.ledger.run_orders(&run.run_id).await?;
    let theater_id = run.theater_id.clone().unwrap_or_default();
    let theater = orch.theaters.open(&theater_id, None).await.ok();
    let mut items = Vec::new();
    for o in &orders {
        let spec = orch.order_spec(&o.order_id).await.unwrap_or(Value::Null);
        items.push(json!({
            "order_id": o.order_id,
            "plan_id": spec.get("plan_id"),
            "objective": o.objective,
            "status": o.status,
            "integrated": o.integration == Some(EventType::Integrated),
            "attempts": o.attempt,
            "commit_sha": o.commit_sha,
            "aar": o.aar,
            "artifacts": o.artifacts,
            "worktree_path": o.worktree_path,
            "records": format!(".garrison/orders/{}/", o.order_id),
            "reason": o.reason,
        }));
    }
    let mainline_sha = match &theater {
        Some(t) => t.mainline_sha().ok(),
        None => None,
    };
    Ok(json!({
        "run_id": run.run_id,
        "status": run.status,
        "theater_id": theater_id,
        "theater_repo": theater.as_ref().map(|t| t.repo.display().to_string()),
        "mainline": theater.as_ref().map(|t| t.mainline.clone()),
        "mainline_sha": mainline_sha,
        "orders": items,
        "reply": run.summary,
    }))
}

/// The human part: reply, then where the work landed.
pub fn print_human(doc: &Value) {
    println!();
    println!("{}", doc["reply"].as_str().unwrap_or("(no reply)"));
    println!();
    let orders = doc["orders"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let merged = orders.iter().filter(|o| o["integrated"] == true).count();
    if let Some(repo) = doc["theater_repo"].as_str() {
        let mainline = doc["mainline"].as_str().unwrap_or("?");
        if merged == 0 {
            println!("Nothing was merged into {repo} ({mainline}).");
        } else {
            println!(
                "Merged {merged} of {} orders into {repo} ({mainline} at {})",
                orders.len(),
                doc["mainline_sha"]
                    .as_str()
                    .map(|s| &s[..s.len().min(12)])
                    .unwrap_or("?")
            );
            println!(
                "Each merged order's order.json, aar.json, result.json and outputs/ are under .garrison/orders/<order_id>/ there."
            );
        }
    }
    for o in orders.iter().filter(|o| o["integrated"] != true) {
        if let Some(reason) = o["reason"].as_str() {
            let id = o["order_id"].as_str().unwrap_or("?");
            let short: String = id.chars().take(8).collect();
            println!("- {short} not merged: {reason}");
        }
    }
}
