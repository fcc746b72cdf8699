//! Orchestration errors, each with the code a surface reports.

use garrison_ledger::LedgerError;
use garrison_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum OrchestrationError {
    /// The request itself is wrong (bad plan, unknown profile, …).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The state moved on (already planned, lease lost, …).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("{0}")]
    Internal(String),
}

impl OrchestrationError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        OrchestrationError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The contract code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            OrchestrationError::Invalid { code, .. } => code,
            OrchestrationError::BadRequest(_) => "SCHEMA_INVALID",
            OrchestrationError::NotFound(_) => "NOT_FOUND",
            OrchestrationError::Conflict(_) => "CONCURRENCY_CONFLICT",
            OrchestrationError::Ledger(e) => e.code(),
            OrchestrationError::Vault(e) => e.code(),
            OrchestrationError::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status a surface answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            // Well-formed JSON the contract refuses: 422, as on every other surface.
            OrchestrationError::Invalid { code, .. } if *code == "SCHEMA_INVALID" => 422,
            OrchestrationError::Invalid { .. } | OrchestrationError::BadRequest(_) => 400,
            OrchestrationError::NotFound(_) => 404,
            OrchestrationError::Conflict(_) => 409,
            OrchestrationError::Ledger(LedgerError::ConcurrencyConflict { .. }) => 409,
            OrchestrationError::Ledger(LedgerError::InvalidTransition(_)) => 409,
            OrchestrationError::Ledger(
                LedgerError::LeaseConflict(_) | LedgerError::LockConflict(_),
            ) => 409,
            OrchestrationError::Ledger(LedgerError::Invalid(_)) => 400,
            OrchestrationError::Vault(VaultError::InvalidId(_)) => 400,
            OrchestrationError::Vault(VaultError::NotFound(_)) => 404,
            OrchestrationError::Vault(VaultError::Dirty { .. } | VaultError::MainlineBusy(_)) => {
                409
            }
            OrchestrationError::Ledger(_)
            | OrchestrationError::Vault(_)
            | OrchestrationError::Internal(_) => 500,
        }
    }
}

pub type Result<T, E = OrchestrationError> = std::result::Result<T, E>;
