//! Plan files (`--plan`, and what an LLM planner must return): orders with
//! dependencies and lock scopes, validated strictly before any order exists.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::artifacts::{Constraints, Profile};
use crate::locks::normalize_resource;

/// `{"orders":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub orders: Vec<PlanOrder>,
}

/// One planned order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanOrder {
    /// Plan-local id: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters
    /// (it ends up in branch and directory names).
    pub id: String,
    pub objective: String,
    pub depends_on: Vec<String>,
    pub lock_scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileRef>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance_criteria: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
}

/// A profile by name (`"llm"`) or in full (`{"name","model"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileRef {
    Name(String),
    Full(Profile),
}

impl ProfileRef {
    /// The profile name.
    pub fn name(&self) -> &str {
        match self {
            ProfileRef::Name(n) => n,
            ProfileRef::Full(p) => &p.name,
        }
    }
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan does not match the plan schema: {0}")]
    Malformed(String),
    #[error("plan has no orders")]
    Empty,
    #[error(
        "order #{index}: invalid id `{id}` (use [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters)"
    )]
    BadId { index: usize, id: String },
    #[error("order id `{0}` is used more than once")]
    DuplicateId(String),
    #[error("order `{0}` has an empty objective")]
    EmptyObjective(String),
    #[error("order `{order}` depends on unknown order `{dependency}`")]
    UnknownDependency { order: String, dependency: String },
    #[error("order `{0}` depends on itself")]
    SelfDependency(String),
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("order `{order}`: lock_scope entry {resource:?} is empty after normalisation")]
    EmptyLock { order: String, resource: String },
    #[error("order `{order}`: profile name must not be empty")]
    EmptyProfile { order: String },
}

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

impl Plan {
    /// Parses (unknown fields are errors), validates and normalises lock scopes.
    pub fn from_value(v: &Value) -> Result<Plan, PlanError> {
        let plan: Plan =
            serde_json::from_value(v.clone()).map_err(|e| PlanError::Malformed(e.to_string()))?;
        plan.normalized()
    }

    /// The plan with lock scopes normalised, after [`Plan::validate`].
    pub fn normalized(mut self) -> Result<Plan, PlanError> {
        self.validate()?;
        for o in &mut self.orders {
            for r in &mut o.lock_scope {
                *r = normalize_resource(r).map_err(|_| PlanError::EmptyLock {
                    order: o.id.clone(),
                    resource: r.clone(),
                })?;
            }
        }
        Ok(self)
    }

    /// Ids unique and well-formed, objectives non-empty, dependencies known,
    /// acyclic, lock scopes normalisable. Overlapping lock scopes of unrelated
    /// orders are allowed: dispatch serialises them.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.orders.is_empty() {
            return Err(PlanError::Empty);
        }
        let mut ids = HashSet::new();
        for (index, o) in self.orders.iter().enumerate() {
            if !valid_id(&o.id) {
                return Err(PlanError::BadId {
                    index,
                    id: o.id.clone(),
                });
            }
            if !ids.insert(o.id.as_str()) {
                return Err(PlanError::DuplicateId(o.id.clone()));
            }
            if o.objective.trim().is_empty() {
                return Err(PlanError::EmptyObjective(o.id.clone()));
            }
            if o.profile
                .as_ref()
                .is_some_and(|p| p.name().trim().is_empty())
            {
                return Err(PlanError::EmptyProfile {
                    order: o.id.clone(),
                });
            }
            for r in &o.lock_scope {
                if normalize_resource(r).is_err() {
                    return Err(PlanError::EmptyLock {
                        order: o.id.clone(),
                        resource: r.clone(),
                    });
                }
            }
        }
        for o in &self.orders {
            for d in &o.depends_on {
                if d == &o.id {
                    return Err(PlanError::SelfDependency(o.id.clone()));
                }
                if !ids.contains(d.as_str()) {
                    return Err(PlanError::UnknownDependency {
                        order: o.id.clone(),
                        dependency: d.clone(),
                    });
                }
            }
        }
        self.topo_order().map(|_| ())
    }

    /// Order ids so that every order comes after its dependencies; ties keep
    /// plan order. A cycle is reported with its path.
    pub fn topo_order(&self) -> Result<Vec<&str>, PlanError> {
        let index: HashMap<&str, usize> = self
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; self.orders.len()];
        let mut out = Vec::with_capacity(self.orders.len());
        for start in 0..self.orders.len() {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (order index, next dependency to look at).
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let deps = &self.orders[node].depends_on;
                if let Some(dep) = deps.get(*next) {
                    *next += 1;
                    let Some(&d) = index.get(dep.as_str()) else {
                        continue; // unknown ids are reported by validate()
                    };
                    match state[d] {
                        0 => {
                            state[d] = 1;
                            stack.push((d, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|&(n, _)| n == d).unwrap_or(0);
                            let mut cycle: Vec<String> = stack[from..]
                                .iter()
                                .map(|&(n, _)| self.orders[n].id.clone())
                                .collect();
                            cycle.push(self.orders[d].id.clone());
                            return Err(PlanError::Cycle(cycle));
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    out.push(self.orders[node].id.as_str());
                    stack.pop();
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> Value {
        json!({"orders": [
            {"id": "research", "objective": "Collect facts", "depends_on": [], "lock_scope": ["notes/"]},
            {"id": "draft", "objective": "Write the summary", "depends_on": ["research"],
             "lock_scope": ["./docs\\summary.md"], "profile": "llm", "type": "draft",
             "inputs": {"text": "..."}, "acceptance_criteria": ["5 bullets"],
             "constraints": {"budget_seconds": 60, "max_retries": 1}},
            {"id": "review", "objective": "Review", "depends_on": ["draft", "research"], "lock_scope": ["docs"],
             "profile": {"name": "executor_default", "model": "m"}}
        ]})
    }

    #[test]
    fn valid_plan_normalises_and_orders() {
        let p = Plan::from_value(&plan()).unwrap();
        assert_eq!(p.orders[0].lock_scope, vec!["notes"]);
        assert_eq!(p.orders[1].lock_scope, vec!["docs/summary.md"]);
        assert_eq!(
            p.orders[1].profile.as_ref().map(ProfileRef::name),
            Some("llm")
        );
        assert_eq!(
            p.orders[2].profile.as_ref().map(ProfileRef::name),
            Some("executor_default")
        );
        assert_eq!(p.topo_order().unwrap(), vec!["research", "draft", "review"]);
        // Overlapping scopes (draft vs review) are fine.
        let mut reversed = plan();
        reversed["orders"].as_array_mut().unwrap().reverse();
        let p = Plan::from_value(&reversed).unwrap();
        assert_eq!(p.topo_order().unwrap(), vec!["research", "draft", "review"]);
    }

    #[test]
    fn refusals() {
        let refuse = |f: &dyn Fn(&mut Value)| {
            let mut p = plan();
            f(&mut p);
            Plan::from_value(&p).unwrap_err()
        };
        assert!(matches!(
            refuse(&|p| p["extra"] = json!(1)),
            PlanError::Malformed(_)
        ));
        assert!(matches!(
            refuse(&|p| p["orders"][0]["priority"] = json!(1)),
            PlanError::Malformed(_)
        ));
        assert!(matches!(
            refuse(&|p| {
                p["orders"][0].as_object_mut().unwrap().remove("depends_on");
            }),
            PlanError::Malformed(_)
        ));
        assert_eq!(refuse(&|p| p["orders"] = json!([])), PlanError::Empty);
        assert!(matches!(
            refuse(&|p| p["orders"][0]["id"] = json!("../x")),
            PlanError::BadId { .. }
        ));
        assert!(matches!(
            refuse(&|p| p["orders"][0]["id"] = json!("")),
            PlanError::BadId { .. }
        ));
        assert_eq!(
            refuse(&|p| p["orders"][1]["id"] = json!("research")),
            PlanError::DuplicateId("research".into())
        );
        assert_eq!(
            refuse(&|p| p["orders"][0]["objective"] = json!(" ")),
            PlanError::EmptyObjective("research".into())
        );
        assert!(matches!(
            refuse(&|p| p["orders"][0]["depends_on"] = json!(["nope"])),
            PlanError::UnknownDependency { .. }
        ));
        assert_eq!(
            refuse(&|p| p["orders"][0]["depends_on"] = json!(["research"])),
            PlanError::SelfDependency("research".into())
        );
        assert!(matches!(
            refuse(&|p| p["orders"][0]["lock_scope"] = json!(["./"])),
            PlanError::EmptyLock { .. }
        ));
        assert!(matches!(
            refuse(&|p| p["orders"][0]["profile"] = json!("")),
            PlanError::EmptyProfile { .. }
        ));
        let cycle = refuse(&|p| p["orders"][0]["depends_on"] = json!(["review"]));
        assert_eq!(
            cycle,
            PlanError::Cycle(vec![
                "research".into(),
                "review".into(),
                "draft".into(),
                "research".into()
            ])
        );
        assert_eq!(
            cycle.to_string(),
            "dependency cycle: research -> review -> draft -> research"
        );
    }
}
