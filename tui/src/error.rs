//! The one error type of the admin tool: a message for the operator, password removed.

use std::fmt;

use llm_orchestrator_state::{ErrorKind, StateStoreError, redact};

/// What went wrong, as a sentence for the operator. Built only through [`AdminError::new`],
/// [`AdminError::already_redacted`] and the `From` impls, which all make sure passwords are
/// removed, each text exactly once: redacting a redacted text again would take what follows
/// a masked `?password=***` (the `:` of "cannot connect to ...?password=***: why") for
/// part of the password.
///
/// An error from the store keeps its [`ErrorKind`], which decisions go by (never the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    message: String,
    broken_pipe: bool,
    kind: Option<ErrorKind>,
}

impl AdminError {
    /// An error with this message (passwords are removed).
    pub fn new(message: impl AsRef<str>) -> Self {
        Self {
            message: redact(message.as_ref()),
            broken_pipe: false,
            kind: None,
        }
    }

    /// An error whose message has no password in it already: it quotes the database only
    /// as [`crate::db::Target::shown`] or `redact_url` wrote it, and store errors only as
    /// the store wrote them.
    pub fn already_redacted(message: String) -> Self {
        Self {
            message,
            broken_pipe: false,
            kind: None,
        }
    }

    /// The reader of our output went away (`wfadmin list | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// The store found no such workflow or checkpoint.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, Some(ErrorKind::NotFound(_)))
    }

    /// The kind of the store's error this is; `None` for wfadmin's own errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.kind
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdminError {}

impl From<StateStoreError> for AdminError {
    /// The store's message as it is: every `StateStoreError` payload is without passwords.
    fn from(err: StateStoreError) -> Self {
        let mut error = Self::already_redacted(err.to_string());
        error.kind = Some(err.kind());
        error
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

/// Why a write of the UI failed, as the operator reads it, and whether it may have been
/// applied all the same: decided on the store's [`ErrorKind`], never on the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    text: String,
    kind: Option<ErrorKind>,
}

impl WriteError {
    /// A failure the store reported as `kind`, said as `text`.
    #[cfg(test)]
    pub fn new(kind: ErrorKind, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            kind: Some(kind),
        }
    }

    /// Whether the write may have gone through before the error: the connection broke
    /// or the call timed out (the answer was lost, not necessarily the write). A write
    /// that got no connection from the pool never started.
    pub fn may_have_applied(&self) -> bool {
        matches!(
            self.kind,
            Some(ErrorKind::ConnectionFailed | ErrorKind::TimedOut)
        )
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::ops::Deref for WriteError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl From<AdminError> for WriteError {
    fn from(err: AdminError) -> Self {
        Self {
            kind: err.kind(),
            text: err.to_string(),
        }
    }
}

/// A failure said as text alone (wfadmin's own, or a read's), with no kind.
impl From<String> for WriteError {
    fn from(text: String) -> Self {
        Self { text, kind: None }
    }
}

impl From<&str> for WriteError {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

/// Shorthand for results of the admin tool.
pub type Result<T, E = AdminError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use llm_orchestrator_state::redact_url;

    use super::*;

    const URL: &str = "postgres://app@db/prod?password=s3cret";

    #[test]
    fn a_write_may_have_applied_only_when_its_answer_was_lost() {
        let write = |kind| WriteError::from(AdminError::from(StateStoreError::new(kind, "x")));
        assert!(write(ErrorKind::ConnectionFailed).may_have_applied());
        // A call past its time-out may have committed (the store's docs say so).
        assert!(write(ErrorKind::TimedOut).may_have_applied());
        for kind in [
            ErrorKind::PoolExhausted,
            ErrorKind::VersionConflict,
            ErrorKind::LeaseHeld,
            ErrorKind::ReadOnly,
            ErrorKind::NotFound(llm_orchestrator_state::Entity::Checkpoint),
        ] {
            assert!(!write(kind).may_have_applied(), "{kind:?}");
        }
        // The text decides nothing.
        assert!(!WriteError::from("connection error: lost").may_have_applied());
        assert_eq!(write(ErrorKind::ReadOnly).to_string(), "read-only: x");
        let not_found = AdminError::from(StateStoreError::new(
            ErrorKind::NotFound(llm_orchestrator_state::Entity::Workflow),
            "workflow state 1",
        ));
        assert!(not_found.is_not_found());
        assert!(!AdminError::new("not found: workflow state 1").is_not_found());
    }

    #[test]
    fn a_store_error_reads_as_the_store_wrote_it() {
        // What the store says when it cannot connect to a URL with a password in its query.
        let store = StateStoreError::Connection(
            format!(
                "cannot connect to {}: database \"prod\" does not exist",
                redact_url(URL)
            )
            .into(),
        );
        assert_eq!(
            AdminError::from(store).to_string(),
            "connection error: cannot connect to postgres://app@db/prod?password=***: \
             database \"prod\" does not exist"
        );
    }

    #[test]
    fn wfadmin_s_own_words_lose_the_password_but_nothing_else() {
        let shown = redact_url(URL);
        assert_eq!(
            AdminError::already_redacted(format!("{shown}; then")).to_string(),
            "postgres://app@db/prod?password=***; then"
        );
        // Raw text (input quoted back, an I/O error) is redacted.
        assert_eq!(
            AdminError::new(format!("cannot open {URL} now")).to_string(),
            "cannot open postgres://app@db/prod?password=*** now"
        );
    }
}
