//! The Commanding Officer and the gateway: create a run, plan its orders,
//! dispatch them as their dependencies allow, and synthesize the reply.

use std::collections::HashMap;
use std::time::Duration;

use garrison_contracts::ironclaw::plan::ProfileRef;
use garrison_contracts::ironclaw::{
    EventType, NewEvent, OrderStatus, Plan, PlanOrder, Profile, RunStatus,
};
use garrison_ledger::{LedgerError, OrderSnapshot, Query, RunSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{OrchestrationError, Result};
use super::ids::new_id;
use super::queue::Ready;
use super::{Orchestrator, planner};

/// `POST /runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRun {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub theater_hint: Option<String>,
    pub objective: String,
}

/// Where a run's orders come from.
#[derive(Debug, Clone)]
pub enum PlanSource {
    /// A plan document (a plan file's content).
    Plan(Value),
    /// Ask this profile's model for a plan (validated strictly).
    Planner(String),
    /// One order for the objective, under this profile (or the default).
    Single { profile: Option<String> },
}

/// An order a plan created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOrder {
    pub order_id: String,
    /// The plan's own id for it.
    pub plan_id: String,
    pub objective: String,
    pub depends_on: Vec<String>,
    pub lock_scope: Vec<String>,
    pub profile: String,
}

/// What a dispatch (or any later advance) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Advance {
    pub enqueued: Vec<String>,
    pub blocked: Vec<String>,
    /// Orders still waiting for dependencies.
    pub waiting: Vec<String>,
    /// The run's status afterwards.
    pub run_status: String,
}

/// A run as `GET /runs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run: RunSnapshot,
    pub orders: Vec<OrderSnapshot>,
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// What `POST /chat` answers.
#[derive(Debug, Clone, Serialize)]
pub struct ChatOutcome {
    pub run_id: String,
    pub status: String,
    /// The reply when the run ended within the wait.
    pub reply: Option<String>,
    pub artifacts: Vec<Value>,
}

const RUN_PLANNED: &str = "planned_at";
const DEPENDENCY_NOT_MET: &str = "DEPENDENCY_NOT_MET";
const RUN_DISPATCHED: &str = "dispatched_at";

impl Orchestrator {
    /// Creates a run (RUN_CREATED) in its theater, opening the theater's repo.
    pub async fn create_run(&self, req: &CreateRun) -> Result<RunSnapshot> {
        if req.objective.trim().is_empty() {
            return Err(OrchestrationError::invalid(
                "MISSING_REQUIRED_INPUT",
                "objective must not be empty",
            ));
        }
        let theater_id = req
            .theater_hint
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.settings.default_theater)
            .to_string();
        self.theaters.open(&theater_id, None).await?;
        let run_id = new_id();
        let mut payload = json!({ "objective": req.objective, "theater_id": theater_id });
        if let Some(u) = &req.user_id {
            payload["user_id"] = json!(u);
        }
        self.ledger
            .append(
                self.event(EventType::RunCreated)
                    .run(&run_id)
                    .theater(&theater_id)
                    .payload(payload),
            )
            .await?;
        self.mark_open(&run_id, true);
        self.run(&run_id).await
    }

    pub(crate) async fn run(&self, run_id: &str) -> Result<RunSnapshot> {
        self.ledger
            .run_snapshot(run_id)
            .await?
            .ok_or_else(|| OrchestrationError::NotFound(format!("no run `{run_id}`")))
    }

    /// The run with its orders and per-status counts.
    pub async fn run_view(&self, run_id: &str) -> Result<RunView> {
        let run = self.run(run_id).await?;
        let orders = self.ledger.run_orders(run_id).await?;
        let counts = garrison_ledger::order_counts(&orders);
        Ok(RunView {
            run,
            orders,
            counts,
        })
    }

    /// Plans a run: validates the whole plan first, then creates every order
    /// in one atomic batch (ORDER_CREATED each, in dependency order). A run
    /// is planned once; a second plan is a conflict.
    pub async fn plan(&self, run_id: &str, source: PlanSource) -> Result<Vec<PlannedOrder>> {
        let run = self.run(run_id).await?;
        if run.status != RunStatus::Open {
            return Err(OrchestrationError::Conflict(format!(
                "run `{run_id}` is {}",
                run.status.as_str()
            )));
        }
        let objective = run.objective.clone().unwrap_or_default();
        let plan = match source {
            PlanSource::Plan(doc) => plan_from_value(&doc)?,
            PlanSource::Planner(profile) => {
                let unit = self.profile(&profile)?.clone();
                let doc = planner::ask(&unit, &objective, &self.profile_names()).await?;
                plan_from_value(&doc)?
            }
            PlanSource::Single { profile } => Plan {
                orders: vec![PlanOrder {
                    id: "order".into(),
                    objective: objective.clone(),
                    depends_on: vec![],
                    lock_scope: vec![],
                    profile: profile.map(ProfileRef::Name),
                    order_type: None,
                    inputs: None,
                    acceptance_criteria: None,
                    constraints: None,
                }],
            },
        };
        for o in &plan.orders {
            let name = o
                .profile
                .as_ref()
                .map_or(self.settings.default_profile.as_str(), ProfileRef::name);
            self.profile(name).map_err(|_| {
                OrchestrationError::invalid(
                    "SCHEMA_INVALID",
                    format!(
                        "order `{}` names profile `{name}`, which is not configured (known: {})",
                        o.id,
                        self.profile_names().join(", ")
                    ),
                )
            })?;
        }
        let order_ids: HashMap<&str, String> = plan
            .orders
            .iter()
            .map(|o| (o.id.as_str(), new_id()))
            .collect();
        let topo = plan
            .topo_order()
            .map_err(|e| OrchestrationError::invalid("SCHEMA_INVALID", e.to_string()))?;
        let by_plan_id: HashMap<&str, &PlanOrder> =
            plan.orders.iter().map(|o| (o.id.as_str(), o)).collect();
        let theater = run.theater_id.clone().unwrap_or_default();
        // The run stream's version guards against a concurrent second plan.
        let run_stream = garrison_ledger::stream_for(&run.garrison_id, Some(run_id), None);
        let version = self.ledger.stream_version(&run_stream).await?;
        if run.metadata.get(RUN_PLANNED).is_some() {
            return Err(OrchestrationError::Conflict(format!(
                "run `{run_id}` is already planned"
            )));
        }
        let mut batch = vec![
            self.event(EventType::RunUpdated)
                .run(run_id)
                .theater(&theater)
                .payload(json!({"metadata": {RUN_PLANNED: now(), "orders": plan.orders.len()}}))
                .expect_version(version),
        ];
        let mut planned = Vec::new();
        for plan_id in topo {
            let Some(o) = by_plan_id.get(plan_id) else {
                continue;
            };
            let order_id = order_ids.get(plan_id).cloned().unwrap_or_default();
            let depends_on: Vec<String> = o
                .depends_on
                .iter()
                .filter_map(|d| order_ids.get(d.as_str()).cloned())
                .collect();
            let profile_name = o
                .profile
                .as_ref()
                .map_or(self.settings.default_profile.clone(), |p| {
                    p.name().to_string()
                });
            let model = match &o.profile {
                Some(ProfileRef::Full(Profile { model, .. })) => model.clone(),
                _ => None,
            };
            batch.push(
                self.event(EventType::OrderCreated)
                    .run(run_id)
                    .order(&order_id)
                    .theater(&theater)
                    .payload(json!({
                        "plan_id": o.id,
                        "objective": o.objective,
                        "global_objective": objective,
                        "depends_on": depends_on,
                        "lock_scope": o.lock_scope,
                        "profile": {"name": profile_name, "model": model},
                        "type": o.order_type.clone().unwrap_or_else(|| "task".into()),
                        "inputs": o.inputs.clone().unwrap_or_default(),
                        "acceptance_criteria": o.acceptance_criteria.clone().unwrap_or_default(),
                        "constraints": o.constraints.clone().unwrap_or_default(),
                    })),
            );
            planned.push(PlannedOrder {
                order_id,
                plan_id: o.id.clone(),
                objective: o.objective.clone(),
                depends_on,
                lock_scope: o.lock_scope.clone(),
                profile: profile_name,
            });
        }
        match self.ledger.append_batch(batch).await {
            Ok(_) => Ok(planned),
            Err(LedgerError::ConcurrencyConflict { .. }) => Err(OrchestrationError::Conflict(
                format!("run `{run_id}` changed while planning; it may already be planned"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Dispatches a run: from now on its orders are enqueued as soon as
    /// their dependencies complete (and are integrated).
    pub async fn dispatch(&self, run_id: &str) -> Result<Advance> {
        let run = self.run(run_id).await?;
        if run.metadata.get(RUN_PLANNED).is_none() {
            return Err(OrchestrationError::Conflict(format!(
                "run `{run_id}` has no plan yet; POST /runs/{run_id}/plan first"
            )));
        }
        if run.status == RunStatus::Open && run.metadata.get(RUN_DISPATCHED).is_none() {
            self.ledger
                .append(
                    self.event(EventType::RunUpdated)
                        .run(run_id)
                        .theater(run.theater_id.clone().unwrap_or_default())
                        .payload(json!({"metadata": {RUN_DISPATCHED: now()}})),
                )
                .await?;
        }
        self.advance(run_id).await
    }

    /// Moves a dispatched run along: enqueues orders whose dependencies are
    /// all COMPLETED (and integrated when the order has a theater), blocks
    /// orders with a FAILED, CANCELLED or blocked dependency
    /// (`DEPENDENCY_NOT_MET`: such a dependency never unblocks), and ends the
    /// run once every order has settled.
    pub async fn advance(&self, run_id: &str) -> Result<Advance> {
        let _one = self.advance_lock.lock().await;
        let run = self.run(run_id).await?;
        let mut out = Advance {
            run_status: run.status.as_str().to_string(),
            ..Advance::default()
        };
        if run.status != RunStatus::Open {
            self.forget_run(run_id);
            return Ok(out);
        }
        if run.metadata.get(RUN_DISPATCHED).is_none() {
            return Ok(out);
        }
        let mut orders = self.ledger.run_orders(run_id).await?;
        self.note_dependencies(run_id, &orders);
        let mut enqueued = Vec::new();
        // Orders are created in dependency order, so one pass sees each
        // dependency's outcome (including blocks made in this pass) first.
        for i in 0..orders.len() {
            let o = &orders[i];
            if o.status != OrderStatus::Queued || o.last_event_type != EventType::OrderCreated {
                continue;
            }
            let state = dependency_state(o, &orders);
            // Only an order that moves now needs its stream version.
            if matches!(state, DepState::Waiting) {
                out.waiting.push(o.order_id.clone());
                continue;
            }
            let stream =
                garrison_ledger::stream_for(&o.garrison_id, o.run_id.as_deref(), Some(&o.order_id));
            let version = self.ledger.stream_version(&stream).await?;
            let base = self
                .event(EventType::OrderEnqueued)
                .run(run_id)
                .order(&o.order_id)
                .theater(o.theater_id.clone().unwrap_or_default())
                .expect_version(version);
            match state {
                DepState::Waiting => {}
                DepState::Met => match self
                    .ledger
                    .append(base.payload(json!({"attempt": o.attempt})))
                    .await
                {
                    Ok(a) => {
                        out.enqueued.push(o.order_id.clone());
                        enqueued.push(o.clone());
                        self.queue
                            .push(Ready::of(o, o.attempt, a.record.stream_version));
                        orders[i].last_event_type = EventType::OrderEnqueued;
                    }
                    Err(LedgerError::ConcurrencyConflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                },
                DepState::Broken { dependency, reason } => {
                    let reason = format!("{DEPENDENCY_NOT_MET}: {reason}");
                    let mut ev = base.payload(json!({
                        "code": DEPENDENCY_NOT_MET,
                        "reason": reason,
                        "dependency": dependency,
                    }));
                    ev.event_type = EventType::OrderBlocked;
                    match self.ledger.append(ev).await {
                        Ok(_) => {
                            out.blocked.push(orders[i].order_id.clone());
                            orders[i].status = OrderStatus::Blocked;
                            orders[i].reason = Some(reason);
                        }
                        Err(LedgerError::ConcurrencyConflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        self.prepare_claims(run_id, enqueued).await;
        if orders.iter().all(settled) && !orders.is_empty() {
            let ended = self.finish(&run, &orders).await?;
            out.run_status = ended.as_str().to_string();
        }
        Ok(out)
    }

    /// Ends a run whose orders have all settled: COMPLETE when every order
    /// completed (and, with a theater, was integrated), else FAILED.
    async fn finish(&self, run: &RunSnapshot, orders: &[OrderSnapshot]) -> Result<RunStatus> {
        let reply = synthesize_text(run, orders, &self.aar_summaries(orders).await?);
        let ok = orders.iter().all(delivered);
        let (t, status) = if ok {
            (EventType::RunCompleted, RunStatus::Complete)
        } else {
            (EventType::RunFailed, RunStatus::Failed)
        };
        let counts = garrison_ledger::order_counts(orders);
        let mut payload = json!({"summary": reply, "reply": reply, "orders": counts});
        if !ok {
            payload["reason"] = json!(failure_reason(orders));
        }
        // One end per run, whichever node gets there first.
        let ev = self
            .event(t)
            .event_id(format!("run-end-{}", run.run_id))
            .run(&run.run_id)
            .theater(run.theater_id.clone().unwrap_or_default())
            .payload(payload);
        let appended = self.ledger.append(ev).await?;
        self.mark_open(&run.run_id, false);
        self.forget_run(&run.run_id);
        Ok(appended.record.event_type.run_status().unwrap_or(status))
    }

    /// The reply for a run from its orders' AARs (deterministic). Ends the
    /// run if every order has settled and it is still open.
    pub async fn synthesize(&self, run_id: &str) -> Result<(String, RunStatus)> {
        self.advance(run_id).await?;
        let run = self.run(run_id).await?;
        let orders = self.ledger.run_orders(run_id).await?;
        let reply = match (&run.summary, run.status) {
            (Some(s), st) if st != RunStatus::Open => s.clone(),
            _ => synthesize_text(&run, &orders, &self.aar_summaries(&orders).await?),
        };
        Ok((reply, run.status))
    }

    async fn aar_summaries(&self, orders: &[OrderSnapshot]) -> Result<HashMap<String, String>> {
        Ok(orders
            .iter()
            .filter_map(|o| {
                let s = o.aar.as_ref()?.get("summary")?.as_str()?;
                Some((o.order_id.clone(), s.to_string()))
            })
            .collect())
    }

    /// Waits (bounded) for a run to end; returns the final snapshot.
    pub async fn wait_run(&self, run_id: &str, limit: Duration) -> Result<RunSnapshot> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut rx = self.ledger.subscribe();
        loop {
            let run = self.run(run_id).await?;
            if run.status != RunStatus::Open {
                return Ok(run);
            }
            let wake = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(wake);
            tokio::select! {
                r = rx.recv() => {
                    // A closed feed would wake this loop at once, forever.
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        (&mut wake).await;
                    }
                }
                () = &mut wake => {}
                () = tokio::time::sleep_until(deadline) => return Ok(run),
            }
        }
    }

    /// The gateway: a run for the message, planned (planner profile or one
    /// order) and dispatched; sync waits (bounded) for the reply.
    pub async fn chat(
        &self,
        req: &garrison_contracts::ironclaw::ChatRequest,
    ) -> Result<ChatOutcome> {
        let run = self
            .create_run(&CreateRun {
                user_id: Some(req.user_id.clone()),
                theater_hint: req.theater_hint.clone(),
                objective: req.message.clone(),
            })
            .await?;
        let source = match &self.settings.planner_profile {
            Some(p) => PlanSource::Planner(p.clone()),
            None => PlanSource::Single { profile: None },
        };
        self.plan(&run.run_id, source).await?;
        self.dispatch(&run.run_id).await?;
        let sync = req.mode == garrison_contracts::ironclaw::ChatMode::Sync;
        let run = if sync {
            self.wait_run(&run.run_id, self.settings.chat_wait).await?
        } else {
            run
        };
        let orders = if sync {
            self.ledger.run_orders(&run.run_id).await?
        } else {
            Vec::new()
        };
        Ok(ChatOutcome {
            reply: (run.status != RunStatus::Open).then(|| run.summary.clone().unwrap_or_default()),
            status: run.status.as_str().to_string(),
            artifacts: orders.iter().flat_map(|o| o.artifacts.clone()).collect(),
            run_id: run.run_id,
        })
    }

    pub(crate) fn profile(&self, name: &str) -> Result<&garrison_agent::UnitProfile> {
        self.settings.profiles.get(name).ok_or_else(|| {
            OrchestrationError::invalid(
                "SCHEMA_INVALID",
                format!(
                    "profile `{name}` is not configured (known: {})",
                    self.profile_names().join(", ")
                ),
            )
        })
    }

    pub(crate) fn profile_names(&self) -> Vec<String> {
        self.settings.profiles.keys().cloned().collect()
    }
}

fn plan_from_value(doc: &Value) -> Result<Plan> {
    Plan::from_value(doc)
        .and_then(Plan::normalized)
        .map_err(|e| OrchestrationError::invalid("SCHEMA_INVALID", format!("plan refused: {e}")))
}

pub(crate) fn now() -> String {
    garrison_ledger::format_ts(jiff::Timestamp::now())
}

enum DepState {
    Met,
    Waiting,
    Broken { dependency: String, reason: String },
}

fn dependency_state(o: &OrderSnapshot, orders: &[OrderSnapshot]) -> DepState {
    let mut waiting = false;
    for dep_id in &o.depends_on {
        let Some(dep) = orders.iter().find(|d| &d.order_id == dep_id) else {
            return DepState::Broken {
                dependency: dep_id.clone(),
                reason: format!("dependency `{dep_id}` does not exist in this run"),
            };
        };
        match dep.status {
            OrderStatus::Completed => match dep.integration {
                _ if dep.theater_id.as_deref().is_none_or(str::is_empty) => {}
                Some(EventType::Integrated) => {}
                Some(EventType::IntegrationFailed) => {
                    return DepState::Broken {
                        dependency: dep_id.clone(),
                        reason: format!("dependency `{dep_id}` completed but failed integration"),
                    };
                }
                _ => waiting = true,
            },
            OrderStatus::Failed | OrderStatus::Cancelled | OrderStatus::Blocked => {
                return DepState::Broken {
                    dependency: dep_id.clone(),
                    reason: format!(
                        "dependency `{dep_id}` is {}; it will not complete",
                        dep.status.as_str()
                    ),
                };
            }
            _ => waiting = true,
        }
    }
    if waiting {
        DepState::Waiting
    } else {
        DepState::Met
    }
}

fn has_theater(o: &OrderSnapshot) -> bool {
    o.theater_id.as_deref().is_some_and(|t| !t.is_empty())
}

/// Completed (and integrated where there is a theater).
fn delivered(o: &OrderSnapshot) -> bool {
    o.status == OrderStatus::Completed
        && (!has_theater(o) || o.integration == Some(EventType::Integrated))
}

/// Nothing more will happen to this order.
fn settled(o: &OrderSnapshot) -> bool {
    match o.status {
        OrderStatus::Completed => {
            !has_theater(o)
                || matches!(
                    o.integration,
                    Some(EventType::Integrated | EventType::IntegrationFailed)
                )
        }
        OrderStatus::Failed | OrderStatus::Cancelled => true,
        // A block for a dependency is final; any other block may still be lifted.
        OrderStatus::Blocked => o
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(DEPENDENCY_NOT_MET)),
        _ => false,
    }
}

fn failure_reason(orders: &[OrderSnapshot]) -> String {
    let bad: Vec<String> = orders
        .iter()
        .filter(|o| !delivered(o))
        .map(|o| {
            let what = match (o.status, o.integration) {
                (OrderStatus::Completed, Some(EventType::IntegrationFailed)) => {
                    "INTEGRATION_FAILED".to_string()
                }
                (s, _) => s.as_str().to_string(),
            };
            format!("{} {what}", short(&o.order_id))
        })
        .collect();
    format!("not delivered: {}", bad.join(", "))
}

/// The last 8 characters: ids share their leading (time) digits.
pub(crate) fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// The deterministic reply: what each order did, from its AAR.
pub(crate) fn synthesize_text(
    run: &RunSnapshot,
    orders: &[OrderSnapshot],
    summaries: &HashMap<String, String>,
) -> String {
    let delivered_n = orders.iter().filter(|o| delivered(o)).count();
    let mut out = format!(
        "{}\n{delivered_n} of {} orders delivered",
        run.objective.as_deref().unwrap_or("(no objective)"),
        orders.len()
    );
    if let Some(t) = &run.theater_id {
        out.push_str(&format!(" into theater `{t}`"));
    }
    out.push('.');
    for o in orders {
        let what = summaries
            .get(&o.order_id)
            .cloned()
            .or_else(|| o.reason.clone())
            .unwrap_or_default();
        let state = match (o.status, o.integration) {
            (OrderStatus::Completed, Some(EventType::Integrated)) => "INTEGRATED".to_string(),
            (OrderStatus::Completed, Some(EventType::IntegrationFailed)) => {
                "INTEGRATION_FAILED".to_string()
            }
            (s, _) => s.as_str().to_string(),
        };
        out.push_str(&format!(
            "\n- {} [{state}] {}: {}",
            short(&o.order_id),
            o.objective.as_deref().unwrap_or(""),
            what.lines().next().unwrap_or("")
        ));
    }
    out
}

/// Orders the observer and reports can look at (`Query` for events).
pub(crate) fn order_events(order_id: &str, t: EventType) -> Query {
    Query {
        order_id: Some(order_id.to_string()),
        event_type: Some(t),
        ..Query::default()
    }
}

impl Orchestrator {
    /// The payload of the order's oldest (or newest) event of type `t`.
    pub(crate) async fn order_event_payload(
        &self,
        order_id: &str,
        t: EventType,
        newest: bool,
    ) -> Result<Option<Value>> {
        let mut q = order_events(order_id, t);
        q.newest_first = newest;
        q.limit = Some(1);
        Ok(self
            .ledger
            .read(&q)
            .await?
            .into_iter()
            .next()
            .map(|r| r.payload))
    }

    /// Keeps what the claims of just-enqueued orders will need: their
    /// snapshots, and their specs read with one query for the whole run.
    /// Only a saving: if the read fails, the claims read for themselves.
    async fn prepare_claims(&self, run_id: &str, enqueued: Vec<OrderSnapshot>) {
        if enqueued.is_empty() {
            return;
        }
        let created = match self.ledger.read(&Query::orders_created_in(run_id)).await {
            Ok(created) => created,
            Err(e) => {
                tracing::warn!(run_id, error = %e, "could not read the run's order specs ahead of its claims");
                return;
            }
        };
        let mut specs: HashMap<String, Value> = created
            .into_iter()
            .filter_map(|r| Some((r.order_id?, r.payload)))
            .collect();
        for order in enqueued {
            // An order created under another run id (never by the CO) is
            // left to the claim's own reads.
            if let Some(spec) = specs.remove(&order.order_id) {
                self.prepared.put(order, spec);
            }
        }
    }
}

pub(crate) fn ev_for_order(base: NewEvent, o: &OrderSnapshot) -> NewEvent {
    ev_for_ids(
        base,
        &o.order_id,
        o.run_id.as_deref(),
        o.theater_id.as_deref(),
    )
}

/// `base` filed under an order and, when it has them, its run and theater.
pub(crate) fn ev_for_ids(
    base: NewEvent,
    order_id: &str,
    run_id: Option<&str>,
    theater_id: Option<&str>,
) -> NewEvent {
    let mut e = base.order(order_id);
    if let Some(r) = run_id {
        e = e.run(r);
    }
    if let Some(t) = theater_id {
        e = e.theater(t);
    }
    e
}
