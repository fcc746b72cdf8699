//! Ledger errors. Each maps to one operator-workflow code so every surface can
//! report it in its own envelope.

/// Everything an append or read can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Compare-and-append lost: the stream moved past the expected version.
    #[error("stream `{stream}` is at version {actual}, expected {expected}")]
    ConcurrencyConflict {
        stream: String,
        expected: i64,
        actual: i64,
    },
    /// A lease check failed: the token does not hold the order's lease (or,
    /// for a grant, the order is leased already). Nothing was appended.
    #[error("{0}")]
    LeaseConflict(String),
    /// A grant's locks conflict with a lease held in the same theater.
    #[error("{0}")]
    LockConflict(String),
    /// The event would move a run or order along an edge the state machine forbids.
    #[error("{0}")]
    InvalidTransition(String),
    /// The event itself is malformed (missing ids, bad timestamp, …).
    #[error("{0}")]
    Invalid(String),
    /// Stored events and the state machine disagree.
    #[error("ledger inconsistent: {0}")]
    Inconsistent(String),
    /// The backing store failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Another process owns the embedded ledger (one owner per data dir).
    #[error("{0}")]
    InUse(String),
    /// The ledger was closed (shutdown in progress).
    #[error("the ledger is closed")]
    Closed,
}

impl LedgerError {
    /// The operator-workflow code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::ConcurrencyConflict { .. } | LedgerError::LeaseConflict(_) => {
                "CONCURRENCY_CONFLICT"
            }
            LedgerError::LockConflict(_) => "LOCK_CONFLICT",
            LedgerError::InvalidTransition(_) => "INVALID_TRANSITION",
            LedgerError::Invalid(_) => "SCHEMA_INVALID",
            LedgerError::Inconsistent(_) => "LEDGER_INCONSISTENT",
            LedgerError::Storage(_) | LedgerError::InUse(_) | LedgerError::Closed => {
                "LEDGER_UNAVAILABLE"
            }
        }
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Storage(e.to_string())
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for LedgerError {
    fn from(e: serde_json::Error) -> Self {
        LedgerError::Storage(format!("corrupt JSON in store: {e}"))
    }
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
