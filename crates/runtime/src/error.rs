//! What the `/v1` and admin services report, each with its Openclawssy code.

use std::path::Path;

/// A failure of the run service, mapped once to `{error:{code,message}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenclawssyError {
    /// Bad input: `invalid.request`, HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// An unknown run or session: `not.found`, HTTP 404.
    #[error("{0}")]
    NotFound(String),
    /// Storage or runtime trouble: `internal.error`, HTTP 500.
    #[error("{0}")]
    Internal(String),
    /// The service is shutting down: `unavailable`, HTTP 503.
    #[error("{0}")]
    Unavailable(String),
}

impl OpenclawssyError {
    /// The error code of the HTTP error body.
    pub fn code(&self) -> &'static str {
        match self {
            OpenclawssyError::Invalid(_) => "invalid.request",
            OpenclawssyError::NotFound(_) => "not.found",
            OpenclawssyError::Internal(_) => "internal.error",
            OpenclawssyError::Unavailable(_) => "unavailable",
        }
    }

    /// A file that could not be read or written.
    pub fn io(path: &Path, e: std::io::Error) -> OpenclawssyError {
        OpenclawssyError::Internal(format!("{}: {e}", path.display()))
    }
}
