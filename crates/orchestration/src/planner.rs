//! The LLM planner: asks a profile's model for a plan in docs/interface.md's plan
//! shape. Its answer is data, validated strictly by the caller before any
//! order exists.

use garrison_agent::UnitProfile;
use serde_json::Value;

use super::error::{OrchestrationError, Result};

pub(crate) async fn ask(
    profile: &UnitProfile,
    objective: &str,
    profiles: &[String],
) -> Result<Value> {
    let UnitProfile::Llm { .. } = profile else {
        return Err(OrchestrationError::invalid(
            "SCHEMA_INVALID",
            "the planner profile must be an `llm` profile",
        ));
    };
    let system = format!(
        "You plan work for a team of coding agents. Answer with one JSON object and nothing else: \
         {{\"orders\":[{{\"id\":\"short-id\",\"objective\":\"...\",\"depends_on\":[ids],\"lock_scope\":[repo paths the order may change],\"profile\":\"one of: {}\"}}]}}. \
         Split the objective into 1 to 6 orders; give orders that touch the same paths a dependency.",
        profiles.join(", ")
    );
    let text = garrison_agent::complete_text(profile, &system, objective)
        .await
        .map_err(|e| {
            OrchestrationError::invalid("SCHEMA_INVALID", format!("planner model: {e}"))
        })?;
    extract_json(&text).ok_or_else(|| {
        OrchestrationError::invalid(
            "SCHEMA_INVALID",
            format!(
                "the planner did not answer with a JSON plan: {}",
                text.chars().take(200).collect::<String>()
            ),
        )
    })
}

/// The JSON object in a model's answer (tolerating a fenced code block).
fn extract_json(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    serde_json::from_str(text.get(start..=end)?).ok()
}
