//! Run lifecycle events (contract §2): numbered, redacted, handed to a
//! caller's sink and, when the run has one, written to the audit log.

use std::sync::{Mutex, PoisonError};

use garrison_contracts::openclawssy::{AuditRecord, RunEvent, RunEventType};
use serde_json::{Map, Value};

use crate::audit::{AuditError, AuditLog, Redactor};

/// Where a run's lifecycle events go as they happen (the HTTP layer's run
/// bundle, a channel to a live view, a test's list).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &RunEvent);
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &RunEvent) {}
}

/// Keeps every event in memory.
#[derive(Debug, Default)]
pub struct EventLog(Mutex<Vec<RunEvent>>);

impl EventLog {
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// The events so far, in emission order.
    pub fn events(&self) -> Vec<RunEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: &RunEvent) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
    }
}

/// Sends each event down a channel; a closed receiver is ignored.
impl EventSink for tokio::sync::mpsc::UnboundedSender<RunEvent> {
    fn emit(&self, event: &RunEvent) {
        let _ = self.send(event.clone());
    }
}

/// Numbers and delivers one run's events: `seq` starts at 1 and grows by one
/// per event; payloads are redacted before they leave; nothing is emitted
/// after the terminal event.
pub struct Lifecycle<'a> {
    run_id: String,
    agent_id: String,
    seq: u64,
    sink: &'a dyn EventSink,
    audit: Option<&'a AuditLog>,
    redactor: Redactor,
    created: bool,
    terminal: bool,
}

impl<'a> Lifecycle<'a> {
    /// Events for `run_id` to `sink`, also audited when `audit` is given.
    /// The audit log's secrets are redacted from sink events too.
    pub fn new(
        run_id: &str,
        agent_id: &str,
        sink: &'a dyn EventSink,
        audit: Option<&'a AuditLog>,
    ) -> Lifecycle<'a> {
        Lifecycle {
            run_id: run_id.to_string(),
            agent_id: agent_id.to_string(),
            seq: 0,
            sink,
            audit,
            redactor: audit.map(|a| a.redactor().clone()).unwrap_or_default(),
            created: false,
            terminal: false,
        }
    }

    /// Also redacts these values (e.g. the API keys a run uses).
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = String>) -> Lifecycle<'a> {
        self.redactor = self.redactor.with_secrets(secrets);
        self
    }

    /// Also redacts every value `other` redacts (the stored secrets).
    pub fn with_redactor(mut self, other: &Redactor) -> Lifecycle<'a> {
        self.redactor = self.redactor.merged(other);
        self
    }

    /// What this run's events are redacted with; tool output is scrubbed
    /// with its values before the model sees it.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The last `seq` used (0 before the first event).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a terminal event was emitted.
    pub fn finished(&self) -> bool {
        self.terminal
    }

    /// `run.created`, once; later calls do nothing.
    pub fn created(&mut self, payload: Map<String, Value>) -> Result<(), AuditError> {
        if self.created {
            return Ok(());
        }
        self.emit(RunEventType::RunCreated, payload)
    }

    /// Emits one event. `run.created` comes first whatever is asked (an
    /// empty one is supplied); after a terminal event nothing is emitted.
    /// The sink always gets the event; an audit write failure is returned.
    pub fn emit(
        &mut self,
        kind: RunEventType,
        payload: Map<String, Value>,
    ) -> Result<(), AuditError> {
        if self.terminal {
            return Ok(());
        }
        if !self.created && kind != RunEventType::RunCreated {
            self.emit(RunEventType::RunCreated, Map::new())?;
        }
        self.created = true;
        self.terminal = kind.is_terminal();
        self.seq += 1;
        let mut event = RunEvent {
            event_id: format!("evt_{}", ulid::Ulid::new()),
            event_type: kind,
            ts: jiff::Timestamp::now().to_string(),
            run_id: self.run_id.clone(),
            agent_id: self.agent_id.clone(),
            seq: self.seq,
            payload,
        };
        let redactions = self.redactor.payload("payload", &mut event.payload);
        self.sink.emit(&event);
        if let Some(audit) = self.audit {
            let actor = match kind {
                RunEventType::ToolCall | RunEventType::ModelRequested => "agent",
                _ => "system",
            };
            let mut record = AuditRecord::from_run_event(&event, actor);
            record.redactions = redactions;
            audit.append(record)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_contracts::openclawssy::check_run_events;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn numbers_orders_and_stops_after_terminal() {
        let log = EventLog::new();
        let mut l = Lifecycle::new("run_1", "agent_default", &log, None)
            .with_secrets(["k-123456".to_string()]);
        l.emit(RunEventType::RunStarted, Map::new()).unwrap();
        l.emit(
            RunEventType::ToolCall,
            map(json!({"input": {"token": "x", "v": "k-123456"}})),
        )
        .unwrap();
        l.emit(RunEventType::RunCompleted, Map::new()).unwrap();
        l.emit(RunEventType::ToolResult, Map::new()).unwrap();
        l.created(Map::new()).unwrap();
        let events = log.events();
        let kinds: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            kinds,
            [
                RunEventType::RunCreated,
                RunEventType::RunStarted,
                RunEventType::ToolCall,
                RunEventType::RunCompleted
            ]
        );
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        check_run_events(&events, true).unwrap();
        assert_eq!(
            events[2].payload["input"],
            json!({"token": "[REDACTED]", "v": "[REDACTED]"})
        );
        assert!(l.finished());
    }

    #[tokio::test]
    async fn channel_sink() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut l = Lifecycle::new("run_1", "a", &tx, None);
        l.created(map(json!({"source": "http"}))).unwrap();
        l.created(Map::new()).unwrap();
        let e = rx.recv().await.unwrap();
        assert_eq!(e.event_type, RunEventType::RunCreated);
        assert_eq!(e.payload["source"], "http");
        assert!(rx.try_recv().is_err());
    }
}
