//! The inbound side (milestone-ingest.md): signed, idempotent ingest, the
//! feed, and the dead letter.
//!
//! Accepted milestones are `MILESTONE_RECEIVED` ledger events whose
//! `event_id` derives from the idempotency key, so "exactly one acceptance
//! per key" is the ledger's idempotent append — under concurrency and across
//! restarts. Rejections come from unauthenticated callers and go to a
//! bounded dead-letter mailbox beside the log, never into it.

use std::sync::Arc;
use std::time::Duration;

use garrison_contracts::ironclaw::EventType;
use garrison_contracts::milestone::{MilestoneEnvelope, idempotency_key};
use garrison_contracts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use garrison_ledger::{Ledger, LedgerError, NewEvent, Query, format_ts};
use serde_json::{Value, json};

use crate::delivery::{DeliverySummary, summarize};

/// The dead-letter mailbox of the ingest.
const MAILBOX: &str = "milestones";
/// The stream accepted milestones are appended to.
const STREAM: &str = "milestones";
/// Feed items returned without `limit`.
const DEFAULT_FEED_PAGE: usize = 20;

/// How the ingest checks and bounds what it receives.
#[derive(Clone)]
pub struct MilestoneSettings {
    /// The HMAC secret; ingest refuses everything while it is unset.
    pub secret: Option<Vec<u8>>,
    /// Largest accepted distance between the signing time and now.
    pub tolerance: Duration,
    /// Largest accepted body.
    pub max_body: usize,
    /// Most items the feed returns.
    pub feed_limit: usize,
    /// Rejections kept in the dead letter.
    pub dead_letter_limit: usize,
}

impl Default for MilestoneSettings {
    fn default() -> Self {
        MilestoneSettings {
            secret: None,
            tolerance: Duration::from_secs(300),
            max_body: 64 * 1024,
            feed_limit: 50,
            dead_letter_limit: 100,
        }
    }
}

impl std::fmt::Debug for MilestoneSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilestoneSettings")
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("tolerance", &self.tolerance)
            .field("max_body", &self.max_body)
            .field("feed_limit", &self.feed_limit)
            .field("dead_letter_limit", &self.dead_letter_limit)
            .finish()
    }
}

/// What the ingest made of a milestone it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now; the milestone's id.
    New(String),
    /// The idempotency key was seen before: nothing new stored.
    Duplicate(String),
}

/// Why an ingest was refused, in the contract's check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No secret is configured.
    NotConfigured,
    /// Signature headers missing, a stale or unreadable timestamp, or a
    /// signature that does not match.
    Unauthenticated,
    /// The body is over [`MilestoneSettings::max_body`].
    TooLarge,
    /// Not JSON, no idempotency key, or an invalid event.
    Invalid,
    /// The ledger could not store it.
    Unavailable,
    /// The accepted event could not be serialised.
    Internal,
}

/// A refused ingest, as recorded in the dead letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    pub refusal: Refusal,
    pub reason: String,
    /// The idempotency key, once it could be read.
    pub key: Option<String>,
}

impl Rejection {
    fn new(refusal: Refusal, reason: impl Into<String>) -> Self {
        Rejection {
            refusal,
            reason: reason.into(),
            key: None,
        }
    }

    fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }
}

/// The feed's `limit` is not a whole number ≥ 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number ≥ 1")]
pub struct BadLimit;

/// A signed request as it arrived: the two signing headers (absent or
/// blank as `None`) and the body, or the fact that it was over the limit.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub body: Result<&'a [u8], TooLarge>,
}

/// The body was cut off at [`MilestoneSettings::max_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The ingest over one ledger.
#[derive(Clone)]
pub struct Ingest {
    ledger: Arc<dyn Ledger>,
    settings: Arc<MilestoneSettings>,
}

impl Ingest {
    pub fn new(ledger: Arc<dyn Ledger>, settings: Arc<MilestoneSettings>) -> Self {
        Ingest { ledger, settings }
    }

    pub fn settings(&self) -> &MilestoneSettings {
        &self.settings
    }

    /// Checks and stores one signed milestone; a refusal is recorded in the
    /// dead letter before it is returned.
    pub async fn receive(&self, req: Signed<'_>) -> Result<Accepted, Rejection> {
        let outcome = self.check_and_store(req).await;
        if let Err(rejection) = &outcome {
            let mut entry = json!({
                "timestampUtc": format_ts(jiff::Timestamp::now()),
                "reason": rejection.reason,
            });
            if let (Some(key), Some(obj)) = (&rejection.key, entry.as_object_mut()) {
                obj.insert("idempotencyKey".into(), json!(key));
            }
            let keep = self.settings.dead_letter_limit;
            if let Err(e) = self.ledger.push_dead_letter(MAILBOX, entry, keep).await {
                tracing::warn!(error = %e, "could not record a rejected milestone");
            }
        }
        outcome
    }

    /// The contract's check order: configuration, headers, size, JSON, key,
    /// freshness and signature, event; then the idempotent append.
    async fn check_and_store(&self, req: Signed<'_>) -> Result<Accepted, Rejection> {
        let settings = &self.settings;
        let Some(secret) = settings.secret.as_deref() else {
            return Err(Rejection::new(
                Refusal::NotConfigured,
                "milestone ingest is not configured: GARRISON_MILESTONE_SECRET is not set",
            ));
        };
        let (Some(signature), Some(stamp)) = (req.signature, req.timestamp) else {
            return Err(Rejection::new(
                Refusal::Unauthenticated,
                format!("missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header"),
            ));
        };
        let bytes = req.body.map_err(|TooLarge| {
            Rejection::new(
                Refusal::TooLarge,
                format!("body exceeds {} bytes", settings.max_body),
            )
        })?;
        // Read as JavaScript reads it: a JS sender's unpaired surrogates are JSON.
        let doc: Value = garrison_contracts::js_json::parse_value(bytes)
            .map_err(|e| Rejection::new(Refusal::Invalid, format!("body is not JSON: {e}")))?;
        let Some(key) = idempotency_key(&doc).map(str::to_string) else {
            return Err(Rejection::new(
                Refusal::Invalid,
                "idempotencyKey is missing or blank",
            ));
        };
        let unauthenticated =
            |reason: String| Rejection::new(Refusal::Unauthenticated, reason).with_key(&key);
        let sent: jiff::Timestamp = stamp.parse().map_err(|_| {
            unauthenticated(format!(
                "{TIMESTAMP_HEADER} `{stamp}` is not an ISO-8601 UTC time"
            ))
        })?;
        let skew = jiff::Timestamp::now().duration_since(sent).unsigned_abs();
        if skew > settings.tolerance {
            return Err(unauthenticated(format!(
                "{TIMESTAMP_HEADER} is {}s away from now (tolerance {}s)",
                skew.as_secs(),
                settings.tolerance.as_secs()
            )));
        }
        match garrison_contracts::verify(secret, bytes, signature) {
            Ok(true) => {}
            Ok(false) => return Err(unauthenticated("signature does not match the body".into())),
            Err(e) => {
                return Err(
                    Rejection::new(Refusal::Invalid, format!("body is not JSON: {e}"))
                        .with_key(&key),
                );
            }
        }
        let envelope = MilestoneEnvelope::from_value(&doc).map_err(|e| {
            Rejection::new(Refusal::Invalid, format!("invalid milestone: {e}")).with_key(&key)
        })?;
        let event = serde_json::to_value(&envelope.event)
            .map_err(|e| Rejection::new(Refusal::Internal, e.to_string()).with_key(&key))?;
        let appended = self
            .ledger
            .append(
                NewEvent::new(EventType::MilestoneReceived)
                    .event_id(format!("milestone:{key}"))
                    .in_stream(STREAM)
                    .payload(json!({
                        "idempotencyKey": key,
                        "sentAtUtc": envelope.sent_at_utc,
                        "signedAt": stamp,
                        "event": event,
                    })),
            )
            .await
            .map_err(|e| {
                Rejection::new(
                    Refusal::Unavailable,
                    format!("the ledger could not store the milestone: {e}"),
                )
                .with_key(&key)
            })?;
        let id = appended.record.payload["event"]["milestoneId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(if appended.duplicate {
            Accepted::Duplicate(id)
        } else {
            Accepted::New(id)
        })
    }

    /// Parses the feed's `limit` (default 20), bounded by the feed limit.
    pub fn feed_page(&self, limit: Option<&str>) -> Result<usize, BadLimit> {
        let n = match limit.map(str::parse::<usize>) {
            None => DEFAULT_FEED_PAGE,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => return Err(BadLimit),
        };
        Ok(n.min(self.settings.feed_limit))
    }

    /// The newest `page` accepted milestones, newest first.
    pub async fn latest(&self, page: usize) -> Result<Vec<Value>, LedgerError> {
        let query = Query {
            event_type: Some(EventType::MilestoneReceived),
            newest_first: true,
            limit: i64::try_from(page).ok(),
            ..Query::default()
        };
        let records = self.ledger.read(&query).await?;
        Ok(records
            .into_iter()
            .map(|mut r| r.payload["event"].take())
            .collect())
    }

    /// Every held rejection, newest first.
    pub async fn dead_letters(&self) -> Result<Vec<Value>, LedgerError> {
        self.ledger
            .dead_letters(MAILBOX, self.settings.dead_letter_limit)
            .await
    }
}

/// The outbox's deliveries, latest state each, newest first.
pub async fn deliveries(ledger: &dyn Ledger) -> Result<Vec<DeliverySummary>, LedgerError> {
    let query = Query {
        event_type: Some(EventType::MilestoneDelivery),
        ..Query::default()
    };
    Ok(summarize(&ledger.read(&query).await?))
}
