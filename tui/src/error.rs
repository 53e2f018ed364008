//! The one error type of the admin tool: a message for the operator, password removed.

use std::fmt;

use llm_orchestrator_state::{StateStoreError, redact};

/// What went wrong, as a sentence for the operator. Built only through [`AdminError::new`]
/// and the `From` impls, which all redact passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    message: String,
    broken_pipe: bool,
}

impl AdminError {
    /// An error with this message (passwords are removed).
    pub fn new(message: impl AsRef<str>) -> Self {
        Self {
            message: redact(message.as_ref()),
            broken_pipe: false,
        }
    }

    /// The reader of our output went away (`wfadmin list | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdminError {}

impl From<StateStoreError> for AdminError {
    fn from(err: StateStoreError) -> Self {
        Self::new(err.to_string())
    }
}

impl From<llm_orchestrator_state::sea_orm::DbErr> for AdminError {
    fn from(err: llm_orchestrator_state::sea_orm::DbErr) -> Self {
        Self::from(StateStoreError::from(err))
    }
}

impl From<serde_json::Error> for AdminError {
    fn from(err: serde_json::Error) -> Self {
        Self::new(format!("JSON error: {err}"))
    }
}

impl From<std::io::Error> for AdminError {
    fn from(err: std::io::Error) -> Self {
        let mut error = Self::new(format!("I/O error: {err}"));
        error.broken_pipe = err.kind() == std::io::ErrorKind::BrokenPipe;
        error
    }
}

/// Shorthand for results of the admin tool.
pub type Result<T, E = AdminError> = std::result::Result<T, E>;
